# frozen_string_literal: true

# With a secret, a room's lists are for holders of a token for that room,
# and the dashboard's channel for holders of its token: checked when each
# message is delivered, so that no form of subscription walks around it.
DELIVERY_SECRET = "delivery-secret-0123456789"
DELIVERY_DASHBOARD = "dashboard-token-0123456789"

RSpec.describe "Delivery-time authorization", :integration do
  on_each_deployment(server: { secret: DELIVERY_SECRET, dashboard: DELIVERY_DASHBOARD }) do
    let(:room) { new_room }
    let(:lesson) { new_lesson }
    let(:user) { new_user("student") }

    def signed(user, room:, expires_in: 600)
      FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room,
                           time_channel: lesson, expires_in: expires_in, secret: DELIVERY_SECRET)
    end

    def join_signed(user)
      tab = bayeux_client.handshake!
      expect(tab.connect(auth: signed(user, room: room))).to include("successful" => true)
      tab
    end

    def subscribe_many(tab, channels, ext: nil)
      message = { "channel" => "/meta/subscribe", "clientId" => tab.client_id, "subscription" => channels }
      message["ext"] = ext if ext
      tab.post(message).find { |r| r["channel"] == "/meta/subscribe" }
    end

    def lists_in(deliveries)
      deliveries.select { |d| d["channel"].end_with?("/user_list", "/user_changes") }
    end

    # A teacher with a token for the room: the control, who must see what
    # the others must not.
    def watching_teacher
      teacher = bayeux_client.handshake!
      reply = subscribe_many(teacher, [user_list_channel(room), "#{room}/user_changes"])
      expect(reply["error"]).to start_with("403:")
      message = { "channel" => "/meta/subscribe", "clientId" => teacher.client_id,
                  "subscription" => [user_list_channel(room), "#{room}/user_changes"],
                  "auth" => signed(new_user("teacher"), room: room) }
      expect(teacher.post(message).find { |r| r["channel"] == "/meta/subscribe" }).to include("successful" => true)
      teacher
    end

    it "delivers no room's lists to a client without a token, whatever it subscribed to" do
      snoopers = {
        "/**" => ["/**"],
        "/classes/**" => ["/classes/**"],
        "the room's /*" => ["#{room}/*"],
        "a mix of patterns" => ["/chat/*", "/classes/*", "/classes/**", "/**"]
      }.to_h do |why, channels|
        tab = bayeux_client.handshake!
        expect(subscribe_many(tab, channels)).to include("successful" => true), why
        [why, tab]
      end
      teacher = watching_teacher
      student = join_signed(user)
      eventually do
        teacher.connect
        expect(lists_in(teacher.deliveries).map { |d| d["data"]["count"] }).to include(1)
      end
      leave(student)
      eventually do
        teacher.connect
        expect(lists_in(teacher.deliveries).map { |d| d["data"]["count"] }.last).to eq 0
      end
      consistently(duration: 0.5) do
        snoopers.each do |why, tab|
          tab.connect
          expect(lists_in(tab.deliveries)).to be_empty, "#{why}: #{lists_in(tab.deliveries).inspect}"
        end
      end
    end

    it "checks every entry of a long subscription list" do
      tab = bayeux_client.handshake!
      decoys = Array.new(150) { |i| "/decoy/#{i}" }
      reply = subscribe_many(tab, decoys + [user_list_channel(room)])
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:")
      teacher = watching_teacher
      join_signed(user)
      eventually do
        teacher.connect
        expect(lists_in(teacher.deliveries)).not_to be_empty
      end
      consistently(duration: 0.3) do
        tab.connect
        expect(lists_in(tab.deliveries)).to be_empty
      end
    end

    it "lets a student receive only the lists of the room of its token" do
      other_room = new_room
      student = join_signed(user)
      reply = subscribe_many(student, ["/classes/**"])
      expect(reply).to include("successful" => true)
      outsider = new_user("outsider")
      tab = bayeux_client.handshake!
      auth = FayeOnline.auth_opts(uid: outsider["uid"], uname: outsider["uname"], room_channel: other_room,
                                  time_channel: lesson, secret: DELIVERY_SECRET)
      expect(tab.connect(auth: auth)).to include("successful" => true)
      join_signed(new_user("classmate"))
      eventually do
        student.connect
        expect(lists_in(student.deliveries).map { |d| d["data"]["channel_name"] }).to include(room)
      end
      consistently(duration: 0.3) do
        student.connect
        expect(lists_in(student.deliveries).map { |d| d["data"]["channel_name"] }.uniq).to eq [room]
      end
    end

    it "delivers the dashboard's channel only to holders of its token" do
      snooper = bayeux_client.handshake!
      expect(subscribe_many(snooper, ["/faye_online/*", "/**"])).to include("successful" => true)
      dashboard = bayeux_client.handshake!
      reply = subscribe_many(dashboard, ["/faye_online/dashboard"], ext: { "dashboard_token" => DELIVERY_DASHBOARD })
      expect(reply).to include("successful" => true)
      join_signed(user)
      eventually do
        dashboard.connect
        expect(dashboard.deliveries.map { |d| d["channel"] }).to include("/faye_online/dashboard")
      end
      consistently(duration: 0.3) do
        snooper.connect
        expect(snooper.deliveries.map { |d| d["channel"] }).not_to include("/faye_online/dashboard")
      end
    end

    it "refuses /meta/ channels that are not Bayeux's own" do
      tab = bayeux_client.handshake!
      ["/meta/subscribe/x", "/meta/connect/", "/meta/x", "/meta/Subscribe"].each do |channel|
        reply = tab.post("channel" => channel, "clientId" => tab.client_id,
                         "subscription" => user_list_channel(room)).find { |r| r["channel"] == channel }
        # Ours is 400; Faye's own 4xx stands where it answers first (a
        # "publication" without data).
        expect(reply).to include("successful" => false), channel
        expect(reply["error"]).to match(/\A4\d\d:/), "#{channel}: #{reply['error']}"
      end
      join_signed(user)
      consistently(duration: 0.3) do
        tab.connect
        expect(lists_in(tab.deliveries)).to be_empty
      end
    end

    it "stops a client whose identity is refused instead of having it handshake again" do
      tab = bayeux_client.handshake!
      reply = tab.connect(auth: signed(user, room: room, expires_in: -5))
      expect(reply["error"]).to start_with("403:")
      expect(reply["advice"]).to include("reconnect" => "none")
      reply = tab.connect(auth: { "room_channel" => "/classes/été" })
      expect(reply["error"]).to start_with("400:")
      expect(reply["advice"]).to include("reconnect" => "none")
      # Faye's own errors keep Faye's advice: an unknown client handshakes.
      reply = bayeux_client.post("channel" => "/meta/connect", "clientId" => "unknown0client0id00000000000000",
                                 "connectionType" => "long-polling").first
      expect(reply["error"]).to start_with("401:")
      expect(reply["advice"]).to include("reconnect" => "handshake")
    end

    it "sends both snapshots to a client that subscribes to both lists before it connects" do
      tab = bayeux_client.handshake!
      join_signed(user)
      message = { "channel" => "/meta/subscribe", "clientId" => tab.client_id,
                  "subscription" => [user_list_channel(room), "#{room}/user_changes"],
                  "auth" => signed(new_user("watcher"), room: room) }
      expect(tab.post(message).find { |r| r["channel"] == "/meta/subscribe" }).to include("successful" => true)
      eventually do
        tab.connect
        expect(lists_in(tab.deliveries).map { |d| d["channel"] }.uniq)
          .to contain_exactly(user_list_channel(room), "#{room}/user_changes")
      end
    end
  end
end
