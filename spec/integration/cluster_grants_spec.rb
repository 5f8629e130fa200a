# frozen_string_literal: true

# With no sticky sessions, what a client showed one process (a token for a
# room, for a private channel, the dashboard's token) counts in every
# other: the process that delivers to it, or that it publishes or
# subscribes through, knows, and nothing is opened to anyone else.
RSpec.describe "Tokens in a cluster without sticky sessions", :integration do
  secret = "cluster-grants-secret-0123"
  dashboard_token = "cluster-grants-dashboard-0123"
  options = { secret: secret, dashboard: dashboard_token, private: ["/chats/**"], timeout: 5, gc: 2 }

  on_each_deployment(only: :redis, server: options) do |configuration|
    before do
      FayeOnline.configure(**configuration.query_options(namespace: namespace), secret: secret)
    end

    after do
      FayeOnline.configure(**configuration.query_options(namespace: namespace))
    end

    define_method(:start_peer) do
      FayeOnlineSpec::ServerProcess.new(configuration.server_env(namespace: namespace, **options)).start
    end

    def signed(user, room:, lesson:)
      FayeOnline.auth_opts(uid: user["uid"], uname: user["uname"], room_channel: room, time_channel: lesson)
    end

    def subscribe(tab, channels, ext: nil, auth: nil)
      message = { "channel" => "/meta/subscribe", "clientId" => tab.client_id, "subscription" => channels }
      message["ext"] = ext if ext
      message["auth"] = auth if auth
      tab.post(message).find { |r| r["channel"] == "/meta/subscribe" }
    end

    # What +tab+ received on channels that +pick+ accepts, polling (with no
    # identity) through +url+.
    def received(tab, url, &pick)
      tab.through(url) { tab.connect }
      tab.deliveries.select { |d| pick.call(d["channel"]) }
    end

    it "lets a token shown to one process count in the others, for lists, private channels and the dashboard" do
      a = server
      b = start_peer
      room = new_room
      lesson = new_lesson
      chat = "/chats/#{FayeOnlineSpec.next_number}"
      ann, bob, eve = %w[ann bob eve].map { |name| new_user(name) }
      # Eve is a student of another room: no token for this one.
      elsewhere = new_room
      ann_tab, bob_tab, eve_tab = { ann => room, bob => room, eve => elsewhere }.map do |user, where|
        tab = FayeOnlineSpec::BayeuxClient.new(a.url).handshake!
        expect(tab.connect(auth: signed(user, room: where, lesson: lesson))).to include("successful" => true)
        tab
      end
      lists = ->(channel) { [user_list_channel(room), "#{room}/user_changes"].include?(channel) }

      # A room's list: subscribed through A with the room's token, received
      # through B (which never saw the token). Eve, with no token for the
      # room but a wildcard that matches everything, receives none of its
      # lists through either.
      reply = subscribe(ann_tab, [user_list_channel(room)], auth: signed(ann, room: room, lesson: lesson))
      expect(reply).to include("successful" => true)
      expect(subscribe(eve_tab, ["/**"])).to include("successful" => true)
      eventually { expect(received(ann_tab, b.url, &lists)).not_to be_empty }

      # A private channel: Ann subscribes through B, which never saw her
      # connect (the uid comes from Redis); Bob through A. Each receives
      # through the other process, and publishes through the process that
      # did not check his token.
      token = ->(user) { FayeOnline.subscribe_token(chat, user: user) }
      tokens = ->(user) { { "faye_online_channel_tokens" => { chat => token.call(user) } } }
      expect(ann_tab.through(b.url) { subscribe(ann_tab, [chat], ext: tokens.call(ann)) }).to include("successful" => true)
      expect(subscribe(bob_tab, [chat], ext: tokens.call(bob))).to include("successful" => true)
      expect(ann_tab.through(a.url) { ann_tab.publish(chat, { "from" => "ann" }) }).to include("successful" => true)
      expect(bob_tab.through(b.url) { bob_tab.publish(chat, { "from" => "bob" }) }).to include("successful" => true)
      chats = ->(channel) { channel == chat }
      eventually { expect(received(ann_tab, a.url, &chats).map { |d| d["data"]["from"] }).to contain_exactly("ann", "bob") }
      eventually { expect(received(bob_tab, b.url, &chats).map { |d| d["data"]["from"] }).to contain_exactly("ann", "bob") }

      # Eve's publication is refused through either process, and she
      # receives nothing of the chat through either.
      [a, b].each do |process|
        reply = eve_tab.through(process.url) { eve_tab.publish(chat, { "from" => "eve" }) }
        expect(reply).to include("successful" => false)
        expect(reply["error"]).to include("only the channel's members publish here")
      end
      # Nor can she subscribe with Ann's token, through a process that
      # looks her up in Redis.
      refused = eve_tab.through(b.url) { subscribe(eve_tab, [chat], ext: tokens.call(ann)) }
      expect(refused["error"]).to include("not for this channel and user")

      # The dashboard: subscribed through A with its token, fed through B.
      admin = FayeOnlineSpec::BayeuxClient.new(a.url).handshake!
      reply = subscribe(admin, ["/faye_online/dashboard"], ext: { "dashboard_token" => dashboard_token })
      expect(reply).to include("successful" => true)
      newcomer = FayeOnlineSpec::BayeuxClient.new(b.url).handshake!
      expect(newcomer.connect(auth: signed(new_user("cy"), room: room, lesson: lesson))).to include("successful" => true)
      eventually { expect(received(admin, b.url) { |c| c == "/faye_online/dashboard" }).not_to be_empty }

      consistently(duration: 1) do
        [a, b].each do |process|
          got = received(eve_tab, process.url) { |c| lists.call(c) || c == chat || c.start_with?("/faye_online/") }
          expect(got).to be_empty
        end
      end
    ensure
      b&.stop
    end

    it "refuses what no process granted, and bad clientIds, through a process that must ask Redis" do
      b = start_peer
      chat = "/chats/#{FayeOnlineSpec.next_number}"
      stranger = FayeOnlineSpec::BayeuxClient.new(b.url).handshake!
      expect(stranger.publish(chat, { "x" => 1 })["error"]).to include("only the channel's members publish here")
      ["not-a-client", "x" * 5000, 12, nil, ["a"]].each do |client_id|
        reply = stranger.post("channel" => chat, "clientId" => client_id, "data" => { "x" => 1 }).find { |r| r["channel"] == chat }
        expect(reply).to include("successful" => false), client_id.inspect[0, 40]
        reply = stranger.post("channel" => "/meta/subscribe", "clientId" => client_id, "subscription" => chat,
                              "ext" => { "faye_online_channel_tokens" => { chat => "1.#{'0' * 64}" } })
                        .find { |r| r["channel"] == "/meta/subscribe" }
        expect(reply).to include("successful" => false), client_id.inspect[0, 40]
      end
      expect(stranger.connect).to include("successful" => true)
      expect(b.log).not_to match(/Error|panicked/)
    ensure
      b&.stop
    end
  end
end
