# frozen_string_literal: true

require "openssl"

# With a secret, a page's claim must carry a token the app signed with it.
SIGNED_IDENTITY_SECRET = "test-secret-0123456789"

RSpec.describe "Signed identities", :integration do
  on_each_deployment(server: { secret: SIGNED_IDENTITY_SECRET }) do
    let(:room) { new_room }
    let(:lesson) { new_lesson }
    let(:user) { new_user("signed") }
    let(:uid) { user["uid"] }

    def signed(user, room:, lesson:, expires: Time.now.to_i + 600, secret: SIGNED_IDENTITY_SECRET)
      FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room,
                           time_channel: lesson, expires_in: expires - Time.now.to_i, secret: secret)
    end

    it "signs what an independent HMAC-SHA256 computes" do
      token = FayeOnline.auth_token(uid: 5, uname: "ann", room_channel: "/classes/4",
                                    time_channel: "/courses/5/lessons/1", expires: 100, secret: SIGNED_IDENTITY_SECRET)
      text = "faye-online/v1\n5\nann\n/classes/4\n/courses/5/lessons/1\n100"
      expect(token).to eq OpenSSL::HMAC.hexdigest("SHA256", SIGNED_IDENTITY_SECRET, text)
    end

    it "accepts a valid token and tracks the user" do
      tab = bayeux_client.handshake!
      reply = tab.connect(auth: signed(user, room: room, lesson: lesson))
      expect(reply).to include("successful" => true)
      eventually { expect(sql.online_uids(room)).to eq [uid] }
      expect(tab.connect(auth: signed(user, room: room, lesson: lesson))).to include("successful" => true)
      eventually { expect(sql.login_logs(uid).size).to eq 1 }
    end

    it "refuses missing, forged, expired and mismatched tokens with 403 and stores nothing" do
      other = new_user("mallory")
      good = signed(user, room: room, lesson: lesson)
      bad_claims = {
        "no token" => auth_for(user, room: room, lesson: lesson),
        "another uid" => good.merge("current_user" => other),
        "another room" => good.merge("room_channel" => new_room),
        "another lesson" => good.merge("time_channel" => new_lesson),
        "expired" => signed(user, room: room, lesson: lesson, expires: Time.now.to_i - 5),
        "a later expiry" => good.merge("expires" => good["expires"] + 60),
        "another secret" => signed(user, room: room, lesson: lesson, secret: "another-secret-0123456"),
        "garbage" => good.merge("token" => "zz"),
        "a number" => good.merge("token" => 5)
      }
      bad_claims.each do |why, claim|
        reply = bayeux_client.handshake!.connect(auth: claim)
        expect(reply).to include("successful" => false), why
        expect(reply["error"]).to start_with("403:"), "#{why}: #{reply['error']}"
      end
      # The server still serves, and stored nothing for the refused claims.
      tab = bayeux_client.handshake!
      expect(tab.connect(auth: signed(user, room: room, lesson: lesson))).to include("successful" => true)
      eventually { expect(sql.online_uids(room)).to eq [uid] }
      expect(sql.login_logs(uid).size).to eq 1
      expect(sql.login_logs(other["uid"])).to be_empty
    end

    it "lets only holders of a token for the room subscribe to its user_list" do
      tab = bayeux_client.handshake!
      channel = user_list_channel(room)
      reply = tab.subscribe(channel)
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:")
      reply = tab.subscribe(channel, auth: signed(user, room: new_room, lesson: lesson))
      expect(reply["error"]).to start_with("403:")
      reply = tab.subscribe(channel, auth: signed(user, room: room, lesson: lesson))
      expect(reply).to include("successful" => true)
    end
  end
end
