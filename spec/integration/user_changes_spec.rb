# frozen_string_literal: true

# <room>/user_changes: the opt-in channel for big rooms. A new subscriber
# gets the whole list once; then each change comes alone, with the count.
# With full_lists: false nothing else is published on a change.
RSpec.describe "Changes alone", :integration do
  on_each_deployment do |configuration|
    def changes_channel(room)
      "#{room}/user_changes"
    end

    it "sends the whole list on subscribe, then each join and leave alone" do
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      bob = new_user("bob")
      join(ann, room: room, lesson: lesson)
      eventually { expect(FayeOnline.online_users(room).size).to eq 1 }
      watcher = faye_client.subscribe(changes_channel(room))
      eventually { expect(watcher.messages(changes_channel(room)).first).to include("count" => 1, "users" => [ann]) }

      bob_tab = join(bob, room: room, lesson: lesson)
      eventually { expect(watcher.messages(changes_channel(room)).last).to eq("count" => 2, "channel_name" => room, "joined" => [bob]) }
      leave(bob_tab)
      eventually { expect(watcher.messages(changes_channel(room)).last).to eq("count" => 1, "channel_name" => room, "left" => [bob]) }
      expect(watcher.messages(changes_channel(room)).drop(1)).to all(satisfy { |m| !m.key?("users") && !m.key?("user_list") })
    end

    it "refuses a client's publication to user_changes with a 403 error" do
      room = new_room
      tab = join(new_user, room: room, lesson: new_lesson)
      reply = tab.publish(changes_channel(room), "count" => 99)
      expect(reply["error"]).to eq "403:#{changes_channel(room)}:only the server publishes online lists"
    end

    it "publishes no whole lists with full_lists: false" do
      slim = FayeOnlineSpec::ServerProcess.new(
        configuration.server_env(namespace: namespace, full_lists: false)
      ).start
      room = new_room
      lists = FayeOnlineSpec::FayeClient.new(slim.url).tap { |c| @faye_clients << c }.subscribe(user_list_channel(room))
      changes = FayeOnlineSpec::FayeClient.new(slim.url).tap { |c| @faye_clients << c }.subscribe(changes_channel(room))
      user = new_user
      FayeOnlineSpec::BayeuxClient.new(slim.url).handshake!.connect(auth: auth_for(user, room: room, lesson: new_lesson))
      eventually { expect(changes.messages(changes_channel(room)).last).to include("count" => 1, "joined" => [user]) }
      # The subscriber of user_list got its snapshot, and nothing since.
      consistently(duration: 0.5) { expect(lists.messages(user_list_channel(room)).size).to eq 1 }
    ensure
      slim&.stop
    end
  end
end
