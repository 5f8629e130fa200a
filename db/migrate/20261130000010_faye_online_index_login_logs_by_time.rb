# The status without a hot store reads the open sessions of the last week,
# and reports read a range of time: this index lets both read the rows of
# their time alone, not the whole log (which holds years on an old site).
class FayeOnlineIndexLoginLogsByTime < ActiveRecord::Migration[6.1]
  def up
    return if index_exists?(:faye_user_login_logs, [:status, :t], name: "idx_status_t")

    add_index :faye_user_login_logs, [:status, :t], name: "idx_status_t"
  end

  def down
    return unless index_exists?(:faye_user_login_logs, [:status, :t], name: "idx_status_t")

    remove_index :faye_user_login_logs, name: "idx_status_t"
  end
end
