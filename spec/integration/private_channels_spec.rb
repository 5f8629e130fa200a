# frozen_string_literal: true

# Private channels: a subscription needs a token the app signed for the
# channel and the user; only members receive and publish; no wildcard or
# list walks around it; the app publishes there with FayeOnline.publish.
RSpec.describe "Private channels", :integration do
  secret = "private-channels-secret-0123"

  on_each_deployment(server: { secret: secret, private: ["/chats/**"] }) do |configuration|
    before do
      FayeOnline.configure(**configuration.query_options(namespace: namespace), faye_url: server_url, secret: secret)
    end

    after do
      FayeOnline.configure(**configuration.query_options(namespace: namespace))
    end

    # A tab of +user+ connected with a signed identity.
    def member_tab(user)
      room = new_room
      auth = FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room,
                                  time_channel: "#{room}/lesson")
      tab = bayeux_client.handshake!
      expect(tab.connect(auth: auth)).to include("successful" => true)
      tab
    end

    def subscribe(tab, channels, tokens = nil)
      message = { "channel" => "/meta/subscribe", "clientId" => tab.client_id, "subscription" => channels }
      message["ext"] = { "faye_online_channel_tokens" => tokens } if tokens
      tab.post(message).find { |r| r["channel"] == "/meta/subscribe" }
    end

    def received(tab, channel)
      tab.connect
      tab.deliveries.select { |m| m["channel"] == channel }.map { |m| m["data"] }
    end

    it "lets members subscribe and talk with the app's tokens, and keeps everyone else out" do
      ann = new_user("ann")
      bob = new_user("bob")
      eve = new_user("eve")
      chat = "/chats/#{FayeOnlineSpec.next_number}"
      ann_tab = member_tab(ann)
      bob_tab = member_tab(bob)
      eve_tab = member_tab(eve)
      token = ->(user, channel = chat, expires_in: 600) { FayeOnline.subscribe_token(channel, user: user, expires_in: expires_in) }

      expect(subscribe(ann_tab, chat, chat => token.call(ann["uid"]))).to include("successful" => true)
      expect(subscribe(bob_tab, [chat], chat => token.call(bob))).to include("successful" => true)

      # Eve, every way a page could try.
      refusals = {
        "no token" => [chat, nil, "needs a token from the app"],
        "another user's token" => [chat, { chat => token.call(ann["uid"]) }, "not for this channel and user"],
        "another channel's token" => [chat, { chat => token.call(eve, "/chats/other") }, "not for this channel and user"],
        "an expired token" => [chat, { chat => token.call(eve, expires_in: -10) }, "has expired"],
        "a forged token" => [chat, { chat => "#{Time.now.to_i + 600}.#{'0' * 64}" }, "not for this channel and user"],
        "not a token" => [chat, { chat => "let me in" }, "not one of the app's"],
        "a token as a number" => [chat, { chat => 12 }, "needs a token"],
        "in a long list" => [["/news"] * 50 + [chat], nil, "needs a token"]
      }
      refusals.each do |what, (channels, tokens, why)|
        reply = subscribe(eve_tab, channels, tokens)
        expect(reply).to include("successful" => false), what
        expect(reply["error"]).to start_with("403:#{chat}:").and(include(why)), what
      end
      # A wildcard is taken, but brings no private message.
      expect(subscribe(eve_tab, "/chats/**")).to include("successful" => true)
      expect(subscribe(eve_tab, "/**")).to include("successful" => true)
      expect(eve_tab.publish(chat, "text" => "spoof"))
        .to include("successful" => false, "error" => "403:#{chat}:only the channel's members publish here")

      expect(ann_tab.publish(chat, "text" => "hi bob")).to include("successful" => true)
      expect(FayeOnline.publish(chat, { "text" => "from the app" })).to be true
      # Ann's was answered once it was in Redis: the app's, published after
      # that answer, comes after it (README, "Order").
      eventually { expect(received(bob_tab, chat)).to eq [{ "text" => "hi bob" }, { "text" => "from the app" }] }
      expect(received(ann_tab, chat)).to eq [{ "text" => "hi bob" }, { "text" => "from the app" }]
      expect(received(eve_tab, chat)).to eq []
      # A client without an identity cannot hold a grant.
      anonymous = bayeux_client.handshake!
      anonymous.connect
      expect(subscribe(anonymous, chat, chat => token.call(ann)))
        .to include("successful" => false, "error" => "403:#{chat}:a private channel needs a client that connected with an identity")
      expect(server).to be_alive
    end
  end
end
