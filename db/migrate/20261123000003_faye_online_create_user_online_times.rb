# One row per user: online_times is a JSON object holding, for each lesson
# channel, when the running timer started and the seconds spent so far.
class FayeOnlineCreateUserOnlineTimes < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_user_online_times)

    create_table :faye_user_online_times do |t|
      t.integer :user_id, limit: 8, default: 0
      t.text :online_times
      t.integer :lock_version, default: 0
      t.timestamps null: true
    end
    add_index :faye_user_online_times, :user_id, unique: true
  end

  def down
    drop_table :faye_user_online_times, if_exists: true
  end
end
