# Append-only audit log: one row each time a clientId joins (status 1) or
# leaves (status 0) a channel, at time t.
class FayeOnlineCreateUserLoginLogs < ActiveRecord::Migration[6.1]
  def up
    return if table_exists?(:faye_user_login_logs)

    create_table :faye_user_login_logs, id: false do |t|
      t.integer :status, limit: 2
      t.integer :uid, limit: 8
      t.datetime :t
      t.integer :channel_id
      t.string :clientId
    end
    add_index :faye_user_login_logs, [:t, :channel_id, :uid], name: "idx_all"
  end

  def down
    drop_table :faye_user_login_logs, if_exists: true
  end
end
