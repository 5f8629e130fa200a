# frozen_string_literal: true

# Several Faye processes share Redis and MariaDB: a change seen by one
# reaches the user_list subscribers of every process, once each.
RSpec.describe "Several processes", :integration do
  on_each_deployment(only: :redis) do |configuration|
    it "publishes each change to the subscribers of every process, once" do
      other = FayeOnlineSpec::ServerProcess.new(configuration.server_env(namespace: namespace)).start
      room = new_room
      lesson = new_lesson
      here = watch(room)
      there = FayeOnlineSpec::FayeClient.new(other.url)
      @faye_clients << there
      there.subscribe(user_list_channel(room))

      ann = new_user("ann")
      bob = new_user("bob")
      join(ann, room: room, lesson: lesson)
      FayeOnlineSpec::BayeuxClient.new(other.url).handshake!.connect(auth: auth_for(bob, room: room, lesson: lesson))

      counts = ->(client) { lists_seen(client, room).map { |list| list["count"] } }
      eventually { expect(counts.call(here)).to include(2) }
      eventually { expect(counts.call(there)).to include(2) }
      [here, there].each do |client|
        changes = lists_seen(client, room).select { |list| list.key?("joined") }
        expect(changes.map { |list| list["joined"].first["uid"] }).to eq [ann["uid"], bob["uid"]]
      end
      expect(FayeOnline.online_users(room).map { |u| u["uid"] }).to eq [ann["uid"], bob["uid"]].sort
      eventually { expect(sql.online_uids(room)).to eq [ann["uid"], bob["uid"]].sort }
    ensure
      other&.stop
    end
  end
end
