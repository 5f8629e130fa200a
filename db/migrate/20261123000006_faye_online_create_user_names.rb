# The name each user last connected with, so that a process without the hot
# store (a Rails app on the embedded default) can show names beside the uids
# of faye_channel_online_lists. New beside the old gem's tables.
class FayeOnlineCreateUserNames < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_online_user_names)

    create_table :faye_online_user_names do |t|
      t.bigint :uid, null: false
      t.string :uname, null: false
      t.timestamps null: true
    end
    add_index :faye_online_user_names, :uid, unique: true
  end

  def down
    drop_table :faye_online_user_names, if_exists: true
  end
end
