# Channel names (rooms and lessons) get a numeric id here; the other tables
# refer to channels by that id. Left untouched when an earlier faye-online
# release already created it.
class FayeOnlineCreateChannels < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_channels)

    create_table :faye_channels do |t|
      t.string :name
      t.timestamps null: true
    end
    add_index :faye_channels, :name, unique: true
  end

  def down
    drop_table :faye_channels, if_exists: true
  end
end
