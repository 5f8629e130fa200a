# Records the database refused for good (a value too long for its column,
# a character the table's charset cannot hold) are set aside here instead
# of blocking every later write: the record as JSON (ASCII only, so that
# any charset holds it), why it failed, and when. `rake
# faye_online:failed` lists them; `rake faye_online:replay` writes them
# again once the cause is fixed.
class FayeOnlineCreateFailedRecords < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_online_failed_records)

    create_table :faye_online_failed_records do |t|
      t.text :record, null: false
      t.text :error, null: false
      t.timestamps null: true
    end
  end

  def down
    drop_table :faye_online_failed_records, if_exists: true
  end
end
