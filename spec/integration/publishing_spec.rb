# frozen_string_literal: true

# Server-only channels and publishing from the app: clients cannot publish
# on the server_publish: channels, FayeOnline.publish (from this process,
# as a Rails app would) can, and its token never reaches a subscriber.
RSpec.describe "Publishing from the app", :integration do
  secret = "publishing-secret-0123456789"
  patterns = ["/broadcast/**", "/users/*/notifications"]

  on_each_deployment(server: { secret: secret, server_publish: patterns }) do |configuration|
    before do
      FayeOnline.configure(**configuration.query_options(namespace: namespace), faye_url: server_url, secret: secret)
    end

    after do
      FayeOnline.configure(**configuration.query_options(namespace: namespace))
    end

    # A raw Bayeux client subscribed to +channel+; its deliveries come with
    # its next poll.
    def listener(channel)
      tab = bayeux_client.handshake!
      tab.connect
      expect(tab.subscribe(channel)).to include("successful" => true)
      tab
    end

    def delivered(tab, channel)
      tab.connect
      tab.deliveries.select { |m| m["channel"] == channel }
    end

    it "delivers the app's publications on server-only channels, without the token" do
      user = new_user
      channel = "/users/#{user['uid']}/notifications"
      tab = listener(channel)
      expect(FayeOnline.publish(channel, { "text" => "Your essay was marked" })).to be true
      expect(FayeOnline.publish("/broadcast/news", { "text" => "no school tomorrow" })).to be true
      messages = []
      eventually { expect(messages.concat(delivered(tab, channel)).size).to eq 1 }
      expect(messages.first["data"]).to eq("text" => "Your essay was marked")
      expect(messages.first).not_to have_key("ext")
      expect(JSON.generate(messages)).not_to include(FayeOnline.configuration.server_token)
    end

    it "refuses a client's publication on a server-only channel, with no token or a forged one" do
      tab = bayeux_client.handshake!
      tab.connect
      ["/broadcast/news", "/broadcast/a/b", "/users/7/notifications"].each do |channel|
        expect(tab.publish(channel, "text" => "spoof"))
          .to include("successful" => false, "error" => "403:#{channel}:only the app publishes here")
      end
      forged = tab.post("channel" => "/broadcast/news", "clientId" => tab.client_id, "data" => { "text" => "x" },
                        "ext" => { "faye_online_server_token" => "f" * 64 })
      expect(forged.find { |r| r["channel"] == "/broadcast/news" })
        .to include("successful" => false, "error" => "403:/broadcast/news:only the app publishes here")
      # Other channels, and the patterns' near misses, stay open to clients.
      ["/broadcast", "/users/7/notes", "/chat/1"].each do |channel|
        expect(tab.publish(channel, "text" => "hello")).to include("successful" => true), channel
      end
      expect(server).to be_alive
    end

    it "says why when the message cannot be handed over, within its timeout" do
      expect { FayeOnline.publish("/broadcast/news", nil) }.to raise_error(ArgumentError, /needs data/)
      ["broadcast", "/meta/connect", "/a b", "/a/*", ""].each do |bad|
        expect { FayeOnline.publish(bad, { "x" => 1 }) }.to raise_error(ArgumentError, /not a channel/), bad
      end
      FayeOnline.configure(**configuration.query_options(namespace: namespace), faye_url: server_url,
                                                                                 server_token: "w" * 32)
      expect { FayeOnline.publish("/broadcast/news", { "x" => 1 }, via: :http) }
        .to raise_error(FayeOnline::PublishError, %r{refused the message: 403:/broadcast/news:only the app publishes here})
      away = "http://127.0.0.1:#{FayeOnlineSpec::ServerProcess.free_port}/faye"
      FayeOnline.configure(**configuration.query_options(namespace: namespace), faye_url: away, secret: secret)
      started = FayeOnlineSpec::Waiting.monotonic_now
      expect { FayeOnline.publish("/broadcast/news", { "x" => 1 }, timeout: 1, via: :http) }
        .to raise_error(FayeOnline::PublishError, /could not reach the Faye server/)
      expect(FayeOnlineSpec::Waiting.monotonic_now - started).to be < 2
      expect { FayeOnline.publish("/broadcast/news", { "x" => 1 }, via: :pigeon) }.to raise_error(ArgumentError, /via:/)
    end

    if configuration.redis?
      it "publishes straight into Faye's engine on Redis, for subscribers of every process, and says why when Redis is away" do
        other = FayeOnlineSpec::ServerProcess.new(configuration.server_env(namespace: namespace, secret: secret,
                                                                           server_publish: patterns)).start
        here = listener("/broadcast/news")
        there = FayeOnlineSpec::BayeuxClient.new(other.url).handshake!
        expect(there.subscribe("/broadcast/news")).to include("successful" => true)
        # No Faye server in the path: faye_url: names nothing that answers.
        FayeOnline.configure(**configuration.query_options(namespace: namespace),
                             faye_url: "http://127.0.0.1:#{FayeOnlineSpec::ServerProcess.free_port}/faye")
        expect(FayeOnline.publish("/broadcast/news", { "text" => "through Redis" })).to be true
        [here, there].each do |tab|
          eventually do
            tab.connect
            expect(tab.deliveries.map { |d| d["data"] }).to eq [{ "text" => "through Redis" }]
          end
        end
        away = "redis://127.0.0.1:#{FayeOnlineSpec::ServerProcess.free_port}/0"
        FayeOnline.configure(**configuration.query_options(namespace: namespace), redis_url: away)
        started = FayeOnlineSpec::Waiting.monotonic_now
        expect { FayeOnline.publish("/broadcast/news", { "x" => 1 }, timeout: 1) }
          .to raise_error(FayeOnline::PublishError, /could not hand the message to Redis/)
        expect(FayeOnlineSpec::Waiting.monotonic_now - started).to be < 2
      ensure
        other&.stop
      end
    end
  end
end
