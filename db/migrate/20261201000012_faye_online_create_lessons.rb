# Lessons' scheduled windows (FayeOnline.schedule, rake
# faye_online:schedule): the attendance report credits a lesson only the
# time inside its window and decides each student's status from it. Times
# are in milliseconds since the epoch.
class FayeOnlineCreateLessons < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_online_lessons)

    create_table :faye_online_lessons do |t|
      t.string :lesson, null: false
      t.bigint :starts_ms, null: false
      t.bigint :ends_ms, null: false
      t.timestamps null: true
    end
    add_index :faye_online_lessons, :lesson, unique: true, name: "index_faye_online_lessons_on_lesson"
    add_index :faye_online_lessons, :starts_ms, name: "index_faye_online_lessons_on_starts_ms"
  end

  def down
    drop_table :faye_online_lessons, if_exists: true
  end
end
