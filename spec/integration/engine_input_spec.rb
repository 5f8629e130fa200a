# frozen_string_literal: true

require "open3"
require "tmpdir"

# Bad input on the paths of Faye's engine on Redis: clientIds that are not
# ids, what something else wrote into a client's queue, and bad worker
# counts. Nothing reaches Redis from a refused message, and the server
# keeps serving.
RSpec.describe "Bad input to Faye's engine on Redis", :integration do
  FayeOnlineSpec.deployments(:redis).first(1).each do |configuration|
    context "(#{configuration.name})" do
      include_context "a faye-online server", configuration

      def engine_keys
        redis_space.engine_keys
      end

      it "answers 401 to a clientId that is not an id (too long, a number, a list, an object) and stores nothing under it" do
        before = engine_keys.sort
        tab = bayeux_client
        ["x" * 200, 12_345, ["a"], { "id" => "a" }].each do |bad|
          %w[/meta/connect /meta/subscribe /meta/unsubscribe].each do |channel|
            message = { "channel" => channel, "clientId" => bad, "connectionType" => "long-polling",
                        "subscription" => "/chat/room", "data" => { "x" => 1 } }
            reply = tab.post(message).find { |r| r["channel"] == channel }
            expect(reply).to include("successful" => false), "#{channel} with #{bad.inspect}: #{reply.inspect}"
            expect(reply["error"]).to start_with("401:")
          end
          # Faye takes a publication from any clientId, as with its own
          # engines; nothing is kept under the id.
          tab.post("channel" => "/chat/room", "clientId" => bad, "data" => { "x" => 1 })
        end
        expect(engine_keys.sort - before).to eq []
        expect(bayeux_client.handshake!.client_id).to be_a(String)
      end

      it "skips what in a client's queue is not a message, and delivers the rest" do
        tab = bayeux_client.handshake!
        expect(tab.subscribe("/queue/test")).to include("successful" => true)
        queue = "#{namespace}/clients/#{tab.client_id}/messages"
        redis_space.redis.rpush(queue, ["not json", "[1,2]", "\"a string\"", "{\"channel\":"])
        bayeux_client.handshake!.publish("/queue/test", { "n" => 1 })
        eventually do
          expect(tab.connect).to include("successful" => true)
          expect(tab.deliveries.map { |d| d["data"] }).to eq [{ "n" => 1 }]
        end
        expect(redis_space.redis.llen(queue)).to eq 0
        expect(bayeux_client.handshake!.client_id).to be_a(String)
      end

      it "refuses a worker count that is not a number, and several workers without Redis" do
        Dir.mktmpdir do |dir|
          File.write(File.join(dir, "Rakefile"), %(require "faye_online/tasks"\n))
          File.write(File.join(dir, "faye.ru"), %(run FayeOnline.get_server\n))
          env = { "RUBYLIB" => File.join(FayeOnlineSpec::ROOT, "lib"), "RACK_ENV" => "production",
                  "REDIS_URL" => nil, "FAYE_ONLINE_NAMESPACE" => nil, "DATABASE_URL" => "sqlite3:#{dir}/x.sqlite3" }
          rake = ->(workers) { Open3.capture2e(env.merge("WORKERS" => workers), Gem.ruby, "-S", "rake", "faye:start", chdir: dir) }
          output, status = rake.call("many")
          expect(status).not_to be_success
          expect(output).to include("WORKERS must be a whole number")
          output, status = rake.call("2")
          expect(status).not_to be_success
          expect(output).to include("WORKERS=2 needs Redis")
        end
      end
    end
  end
end

# The same paths on faye-online's memory engine (the embedded default):
# what is not a clientId finds no client, subscribes nothing and keeps
# nothing, a channel that is not one never reaches the engine, and the
# server keeps serving.
RSpec.describe "Bad input to faye-online's memory engine", :integration do
  FayeOnlineSpec.deployments.reject(&:redis?).first(1).each do |configuration|
    context "(#{configuration.name})" do
      include_context "a faye-online server", configuration, timeout: 2

      it "answers 401 to a clientId that is not an id, and a bad one subscribes nothing" do
        watcher = bayeux_client.handshake!
        expect(watcher.subscribe("/chat/**")).to include("successful" => true)
        tab = bayeux_client
        ["x" * 200, 12_345, ["a"], { "id" => "a" }, "", nil].each do |bad|
          %w[/meta/connect /meta/subscribe /meta/unsubscribe].each do |channel|
            message = { "channel" => channel, "clientId" => bad, "connectionType" => "long-polling",
                        "subscription" => "/chat/room" }
            reply = tab.post(message).find { |r| r["channel"] == channel }
            expect(reply).to include("successful" => false), "#{channel} with #{bad.inspect}: #{reply.inspect}"
            expect(reply["error"]).to match(/\A40[12]:/)
          end
          # A publication is taken from any clientId, as Faye's own engine
          # takes it, and reaches the subscribers.
          tab.post("channel" => "/chat/room", "clientId" => bad, "data" => { "from" => bad.class.name })
        end
        # Strings that are not UTF-8 (a lone surrogate in JSON) as the
        # clientId, the channel, the subscription and inside data: each
        # message is refused with 400, nothing is published, and the server
        # goes on (Faye, failing to encode its answer, would stop).
        good = bayeux_client.handshake!.client_id
        [%({"channel":"/meta/subscribe","clientId":"\\udc80ab","subscription":"/chat/x"}),
         %({"channel":"/meta/subscribe","clientId":"#{good}","subscription":"/chat/\\udc80"}),
         %({"channel":"/meta/connect","clientId":"#{good}","connectionType":"long-polling","id":"\\udc80"}),
         %({"channel":"/chat/\\udc80","clientId":"#{good}","data":{}}),
         %({"channel":"/chat/room","clientId":"#{good}","data":{"from":"\\udc80","\\udc81":1}})].each do |raw|
          code, body = tab.post_raw("[#{raw}]")
          expect(code).to eq("200"), "#{raw}: #{code} #{body}"
          reply = JSON.parse(body).first
          expect(reply["successful"]).to be(false), raw
          # (Faye's own checks of the clientId or the channel may answer 401 or 405 instead.)
          expect(reply["error"]).to match(/\A40[015]:/), "#{raw}: #{reply.inspect}"
        end
        eventually do
          expect(watcher.connect).to include("successful" => true)
          expect(watcher.deliveries.map { |d| d["data"]["from"] }).to eq %w[String Integer Array Hash String NilClass]
        end
        # A publication on a channel that is not one is refused before any engine.
        reply = bayeux_client.handshake!.post("channel" => "/chat/bad channel", "data" => {}).first
        expect(reply).to include("successful" => false)
        expect(bayeux_client.handshake!.client_id).to be_a(String)
      end

      it "collects a client that stops polling" do
        # The server's timeout here is 2 s: a client is destroyed 4 s after
        # its last poll, by the sweep that runs every second. A
        # subscription asks whether it exists without pinging it, as a
        # poll would.
        tab = bayeux_client.handshake!
        expect(tab.subscribe("/gone/soon")).to include("successful" => true)
        eventually(timeout: 15) do
          expect(tab.subscribe("/gone/later")["error"].to_s).to start_with("401:")
        end
        expect(bayeux_client.handshake!.client_id).to be_a(String)
      end
    end
  end
end
