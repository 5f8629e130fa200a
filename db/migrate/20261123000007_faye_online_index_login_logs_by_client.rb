# faye-online writes each clientId's login and logout row once, even when a
# write is retried after the connection broke before its answer came back:
# it looks the row up by clientId and status first. This index keeps that
# lookup cheap (the old gem's table had none on clientId).
class FayeOnlineIndexLoginLogsByClient < ActiveRecord::Migration[6.1]
  def up
    return if index_exists?(:faye_user_login_logs, [:clientId, :status], name: "idx_client_status")

    add_index :faye_user_login_logs, [:clientId, :status], name: "idx_client_status"
  end

  def down
    return unless index_exists?(:faye_user_login_logs, [:clientId, :status], name: "idx_client_status")

    remove_index :faye_user_login_logs, name: "idx_client_status"
  end
end
