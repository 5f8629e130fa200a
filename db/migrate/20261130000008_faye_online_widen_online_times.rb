# A user's online_times holds a key for every lesson they ever attended. As
# a TEXT column (64 KB in MySQL) it overflowed after about two thousand
# lessons; MEDIUMTEXT holds 16 MB, a lifetime of lessons. SQLite's TEXT
# has no such bound.
class FayeOnlineWidenOnlineTimes < ActiveRecord::Migration[6.1]
  def up
    return unless connection.adapter_name.match?(/mysql|maria/i)

    change_column :faye_user_online_times, :online_times, :text, limit: 16_777_215
  end

  def down
    return unless connection.adapter_name.match?(/mysql|maria/i)

    change_column :faye_user_online_times, :online_times, :text
  end
end
