# The interval ledger: one row per stretch of a clientId's time in a
# lesson, appended and never edited. `kind` is `attended` (the page was
# open: from its join to its leave, or its last poll) or `engaged` (the
# page was active: shown and in use). Times are in milliseconds since the
# epoch. `ended_by` says why it ended: `left`, `closed` (the page went
# away), `vanished` (it stopped polling), `stopped` (the server stopped),
# or for engaged time `idle` or `hidden`. The unique key makes a write
# retried after its commit change nothing, whichever process writes it.
class FayeOnlineCreateIntervals < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_online_intervals)

    create_table :faye_online_intervals do |t|
      t.bigint :uid, null: false
      t.string :lesson, null: false
      t.string :client_id, limit: 64, null: false
      t.string :kind, limit: 16, null: false
      t.bigint :started_ms, null: false
      t.bigint :ended_ms, null: false
      t.string :ended_by, limit: 16, null: false
    end
    add_index :faye_online_intervals, [:client_id, :kind, :started_ms], unique: true,
              name: "index_faye_online_intervals_once"
    add_index :faye_online_intervals, [:lesson, :uid], name: "index_faye_online_intervals_on_lesson_uid"
  end

  def down
    drop_table :faye_online_intervals, if_exists: true
  end
end
