# frozen_string_literal: true

# faye-online's engine on Redis keeps faye-redis's layout, so a Node.js
# Faye server on the npm package faye-redis, sharing the Redis database and
# namespace, is part of the same cluster: messages cross both ways, and a
# client made by either server is known to the other. The clients here are
# the npm faye client, a Ruby Faye::Client and raw Bayeux over HTTP.
RSpec.describe "Node.js Faye servers on faye-redis as peers", :integration do
  FayeOnlineSpec.deployments(:redis).first(1).each do |configuration|
    context "(#{configuration.name})" do
      include_context "a faye-online server", configuration, { timeout: 5, gc: 1 }

      before(:all) do
        @node_port = FayeOnlineSpec::ServerProcess.free_port
        @node = FayeOnlineSpec::NodeProcess.new("faye_redis_server.js", @node_port, configuration.redis_url,
                                                namespace, 5)
        @node.wait_for_line("listening")
      end

      after(:all) { @node&.stop }

      let(:node_url) { "http://127.0.0.1:#{@node_port}/faye" }

      it "carries messages both ways between the npm faye client on Node.js and a Ruby client on faye-online" do
        ruby_side = faye_client.subscribe("/cross/ruby")
        node_side = FayeOnlineSpec::NodeProcess.new("client.js", node_url, "/cross/node", "/cross/ruby")
        node_side.wait_for { |m| m["subscribed"] == "/cross/node" }

        # Node.js → Redis → faye-online → Ruby.
        node_side.puts("from node")
        eventually { expect(ruby_side.messages("/cross/ruby")).to eq [{ "text" => "from node" }] }

        # Ruby → faye-online → Redis → Node.js.
        ruby_side.publish("/cross/node", { "text" => "from ruby" })
        node_side.wait_for { |m| m["channel"] == "/cross/node" && m["data"] == { "text" => "from ruby" } }
        consistently(duration: 0.5) do
          expect(node_side.messages.count { |m| m["channel"] == "/cross/node" }).to eq 1
          expect(ruby_side.messages("/cross/ruby").size).to eq 1
        end
      ensure
        node_side&.stop
      end

      it "knows the clients the other server made, and delivers what one queued for the other's" do
        made_by_node = FayeOnlineSpec::BayeuxClient.new(node_url).handshake!
        made_here = bayeux_client.handshake!

        # Each polls through the other server with its clientId.
        across = FayeOnlineSpec::BayeuxClient.new(server_url)
        across.instance_variable_set(:@client_id, made_by_node.client_id)
        expect(across.subscribe("/queued/here")).to include("successful" => true)
        expect(across.connect).to include("successful" => true)
        back = FayeOnlineSpec::BayeuxClient.new(node_url)
        back.instance_variable_set(:@client_id, made_here.client_id)
        expect(back.subscribe("/queued/there")).to include("successful" => true)
        expect(back.connect).to include("successful" => true)

        # Published through one server while the subscriber is between
        # polls; its next poll, through the other server, gets it. (Polls
        # of the Node.js server wait a little: faye-redis takes a client's
        # queue after its poll began, and one that asks for no wait at all
        # may be answered first.)
        made_here.publish("/queued/here", { "n" => 1 })
        eventually do
          made_by_node.connect(timeout_ms: 1000)
          expect(made_by_node.deliveries.map { |d| d["data"] }).to eq [{ "n" => 1 }]
        end
        made_by_node.publish("/queued/there", { "n" => 2 })
        eventually do
          made_here.connect
          expect(made_here.deliveries.map { |d| d["data"] }).to eq [{ "n" => 2 }]
        end

        # A disconnect through one ends the client for both.
        expect(made_by_node.disconnect).to include("successful" => true)
        expect(across.connect).to include("successful" => false, "error" => a_string_starting_with("401:"))
      end
    end
  end
end
