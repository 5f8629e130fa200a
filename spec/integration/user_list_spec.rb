# frozen_string_literal: true

# <room>/user_list: what subscribers get, and that only the server writes it.
RSpec.shared_examples "a room's user list channel" do
  let(:room) { new_room }
  let(:lesson) { new_lesson }
  let(:user) { new_user("mvj3") }
  let(:uid) { user["uid"] }

  describe "/meta/subscribe to <room>/user_list" do
    it "delivers the current list to the new subscriber promptly, without a membership change" do
      join(user, room: room, lesson: lesson)
      eventually { expect(sql.online_uids(room)).to eq [uid] }

      2.times do
        watcher = watch(room)
        eventually(timeout: 1.5) { expect(lists_seen(watcher, room)).not_to be_empty }
        list = lists_seen(watcher, room).first
        expect(list).to include("count" => 1, "user_list" => [uid], "channel_name" => room)
        expect(list["users"]).to contain_exactly(include(user))
      end
      expect(sql.login_logs(uid).size).to eq 1
    end
  end

  describe "publishing to <room>/user_list" do
    let(:forged) { { "count" => 99, "user_list" => [1], "channel_name" => room } }

    def expect_no_forged_list(watcher)
      consistently(duration: 0.5) do
        expect(lists_seen(watcher, room).map { |list| list["count"] }).not_to include(99)
      end
    end

    it "is refused with a 403 error for a member of the room" do
      watcher = watch(room)
      tab = join(user, room: room, lesson: lesson)
      reply = tab.publish(user_list_channel(room), forged)
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:")
      expect_no_forged_list(watcher)
    end

    it "is refused with a 403 error for a client without auth" do
      watcher = watch(room)
      tab = bayeux_client.handshake!
      reply = tab.publish(user_list_channel(room), forged)
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:")
      expect_no_forged_list(watcher)
    end

    it "is refused to a Faye::Client, whose publication fails with code 403" do
      watcher = watch(room)
      publisher = faye_client(auth: auth_for(user, room: room, lesson: lesson))
      publisher.connect!
      error = publisher.publish(user_list_channel(room), forged)
      expect(error).not_to be_nil
      expect(error.code).to eq 403
      expect_no_forged_list(watcher)
    end
  end

  describe "other channels" do
    it "still carry the application's own messages" do
      listener = faye_client.subscribe("#{room}/chat")
      tab = join(user, room: room, lesson: lesson)
      expect(tab.publish("#{room}/chat", "text" => "hello")).to include("successful" => true)
      eventually { expect(listener.messages("#{room}/chat")).to eq [{ "text" => "hello" }] }
    end
  end
end

RSpec.describe "User list channel", :integration do
  on_each_deployment do
    it_behaves_like "a room's user list channel"
  end
end
