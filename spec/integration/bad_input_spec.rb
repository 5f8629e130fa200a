# frozen_string_literal: true

# The rows of the README's bad-input table that are not about the shape of
# `auth` itself (those are in auth_spec.rb): each gets its documented answer,
# stores nothing, and the server keeps serving.
RSpec.describe "Bad input", :integration do
  on_each_deployment do
    let(:room) { new_room }
    let(:lesson) { new_lesson }
    let(:user) { new_user }

    # Someone else joins afterwards; once that is stored, nothing of `uid`
    # may be.
    def expect_nothing_stored_for(uid)
      sentinel = new_user("sentinel")
      join(sentinel, room: room, lesson: lesson)
      eventually { expect(sql.online_uids(room)).to eq [sentinel["uid"]] }
      consistently(duration: 0.3) do
        expect(sql.login_logs(uid)).to be_empty
        expect(sql.online_times(uid)).to be_nil
      end
    end

    # Faye's JSON parser refuses the whole request before any extension sees
    # it; a message from an in-process client with such a string gets
    # `400:auth:holds a string that is not UTF-8` from faye-online itself.
    it "has Faye refuse a request holding bytes that are not UTF-8 (HTTP 400)" do
      tab = bayeux_client.handshake!
      auth = JSON.generate(auth_for(user, room: room, lesson: lesson)).sub(user["uname"], "caf\xE9".b)
      body = %([{"channel":"/meta/connect","clientId":"#{tab.client_id}","connectionType":"long-polling",) +
             %("advice":{"timeout":0},"id":"1","auth":#{auth}}]).b
      status, = tab.post_raw(body)
      expect(status).to eq "400"
      expect_nothing_stored_for(user["uid"])
    end

    it "answers a body that is not JSON without stopping" do
      status, = bayeux_client.post_raw("[{\"channel\": \"/meta/connect\", \"auth\": {")
      expect(status).to eq "400"
      expect(bayeux_client.handshake!.client_id).to be_a(String)
    end

    it "ignores unknown extra fields in auth" do
      auth = auth_for(user, room: room, lesson: lesson).merge("colour" => "blue", "tabs" => [1, 2])
      tab = bayeux_client.handshake!
      expect(tab.connect(auth: auth)).to include("successful" => true)
      eventually { expect(sql.log_entries(user["uid"])).to eq [[1, tab.client_id]] }
    end

    it "leaves a connect from an unknown clientId to Faye (401) and stores nothing" do
      tab = FayeOnlineSpec::BayeuxClient.new(server_url)
      tab.instance_variable_set(:@client_id, "notaclientofthisserver123")
      reply = tab.connect(auth: auth_for(user, room: room, lesson: lesson))
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("401:")
      expect_nothing_stored_for(user["uid"])
    end

    it "accepts a disconnect before any connect and stores nothing" do
      tab = bayeux_client.handshake!
      expect(tab.disconnect).to include("successful" => true)
      expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => false)
      expect_nothing_stored_for(user["uid"])
    end

    it "refuses a clientId that moves to another room with a 403 error and keeps the first" do
      tab = join(user, room: room, lesson: lesson)
      other_room = new_room
      reply = tab.connect(auth: auth_for(user, room: other_room, lesson: lesson))
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:auth:")
      eventually { expect(sql.online_uids(room)).to eq [user["uid"]] }
      consistently(duration: 0.3) { expect(Array(sql.online_uids(other_room))).to eq [] }
    end

    it "refuses a client's publication to a user_list with a 403 error" do
      watcher = watch(room)
      tab = join(user, room: room, lesson: lesson)
      reply = tab.publish("#{room}/user_list", "count" => 99, "user_list" => [1])
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to eq "403:#{room}/user_list:only the server publishes online lists"
      eventually { expect(lists_seen(watcher, room).last&.fetch("user_list")).to eq [user["uid"]] }
      consistently(duration: 0.3) { expect(lists_seen(watcher, room).map { |l| l["count"] }).not_to include(99) }
    end
  end
end
