# One row per room: user_info_list is the JSON array of the uids online in it.
# channel_id is unique so that two server processes cannot create two rows for
# the same room (an existing table gets that index in a later migration).
class FayeOnlineCreateChannelOnlineLists < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_channel_online_lists)

    create_table :faye_channel_online_lists do |t|
      t.integer :channel_id, default: 0
      t.text :user_info_list
      t.integer :lock_version, default: 0
      t.timestamps null: true
    end
    add_index :faye_channel_online_lists, :channel_id, unique: true
  end

  def down
    drop_table :faye_channel_online_lists, if_exists: true
  end
end
