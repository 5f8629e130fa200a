# Tables made by earlier faye-online releases index faye_channel_online_lists
# by channel_id without making it unique. Make it unique, so that concurrent
# server processes cannot each insert a row for the same room. The list is
# transient state (who is online now), so when a room has several rows only
# the newest is kept.
class FayeOnlineUniqueChannelOnlineLists < ActiveRecord::Migration[6.1]
  def up
    return if index_exists?(:faye_channel_online_lists, :channel_id, unique: true)

    execute <<~SQL
      DELETE FROM faye_channel_online_lists
      WHERE id NOT IN (
        SELECT keep_id FROM (
          SELECT MAX(id) AS keep_id FROM faye_channel_online_lists GROUP BY channel_id
        ) AS newest
      )
    SQL
    if index_exists?(:faye_channel_online_lists, :channel_id)
      remove_index :faye_channel_online_lists, column: :channel_id
    end
    add_index :faye_channel_online_lists, :channel_id, unique: true
  end

  def down
    return unless index_exists?(:faye_channel_online_lists, :channel_id, unique: true)

    remove_index :faye_channel_online_lists, column: :channel_id
    add_index :faye_channel_online_lists, :channel_id
  end
end
