# frozen_string_literal: true

require "logger"

# What any Faye engine must do, as Faye's server uses it through its engine
# proxy: clients, pings and timeouts, subscriptions with wildcards, fan-out,
# queues for clients between polls, destruction and the collection of dead
# clients. Run against Faye's own memory engine, faye-online's memory
# engine and faye-online's engine on Redis: all must pass.
module FayeOnlineSpec
  # Calls on a Faye engine proxy (`engine`), on the reactor.
  module EngineCalls
    # Calls +name+ on the engine proxy, on the reactor, and returns what its
    # callback got (the first argument), waiting for it.
    def engine_call(name, *args)
      box = Queue.new
      FayeOnlineSpec::Reactor.run { engine.public_send(name, *args) { |*got| box << got } }
      FayeOnlineSpec::Waiting.wait_for(timeout: 5, message: "#{name} to answer") { !box.empty? }
      box.pop.first
    end

    def new_client
      engine_call(:create_client)
    end

    # Opens a long-polling connection for +client_id+ (as a /meta/connect
    # does) and returns a queue that receives each batch of messages it gets.
    def connect(client_id, timeout_ms: 2_000)
      batches = Queue.new
      FayeOnlineSpec::Reactor.run do
        engine.connect(client_id, "timeout" => timeout_ms) { |events| batches << events }
      end
      batches
    end

    # The data of the messages the next batch carries (waiting up to 3 s).
    def received(batches)
      FayeOnlineSpec::Waiting.wait_for(timeout: 3, message: "a delivery") { !batches.empty? }
      batches.pop.map { |message| message["data"] }
    end

    def publish(channel, data)
      FayeOnlineSpec::Reactor.run { engine.publish("channel" => channel, "data" => data) }
    end

    # The engine's events of one kind, in order, as [clientId, ...] arguments.
    def events(kind)
      @events ||= Hash.new { |h, k| h[k] = [] }
      @bound ||= {}
      unless @bound[kind]
        @bound[kind] = true
        FayeOnlineSpec::Reactor.run { engine.bind(kind) { |*args| @events[kind] << args } }
      end
      @events[kind]
    end
  end
end

RSpec.shared_examples "a Faye engine" do
  include FayeOnlineSpec::EngineCalls

  it "creates clients with ids of their own, which exist until destroyed" do
    handshakes = events(:handshake)
    disconnects = events(:disconnect)
    ids = Array.new(5) { new_client }
    expect(ids.uniq.size).to eq 5
    expect(ids).to all(match(/\A[0-9a-z]{20,}\z/))
    ids.each { |id| expect(engine_call(:client_exists, id)).to be true }
    expect(engine_call(:client_exists, "#{ids.first}x")).to be false
    eventually { expect(handshakes.map(&:first)).to include(*ids) }

    engine_call(:destroy_client, ids.first)
    expect(engine_call(:client_exists, ids.first)).to be false
    eventually { expect(disconnects.map(&:first)).to eq [ids.first] }
  end

  it "keeps a client that pings and collects one that stops, once" do
    disconnects = events(:disconnect)
    alive = new_client
    dead = new_client
    deadline = FayeOnlineSpec::Waiting.monotonic_now + 4 * engine_timeout + 2
    until disconnects.map(&:first).include?(dead)
      raise "the dead client was not collected" if FayeOnlineSpec::Waiting.monotonic_now > deadline

      FayeOnlineSpec::Reactor.run { engine.ping(alive) }
      sleep 0.1 # the live client's pace: it pings ten times a second
    end
    expect(engine_call(:client_exists, dead)).to be false
    expect(engine_call(:client_exists, alive)).to be true
    consistently(duration: 0.5) { expect(disconnects.count { |(id)| id == dead }).to eq 1 }
  end

  it "tells of a subscription and an unsubscription once each" do
    subscribes = events(:subscribe)
    unsubscribes = events(:unsubscribe)
    client = new_client
    2.times { engine_call(:subscribe, client, "/chat/a") }
    2.times { engine_call(:unsubscribe, client, "/chat/a") }
    expect(subscribes).to eq [[client, "/chat/a"]]
    expect(unsubscribes).to eq [[client, "/chat/a"]]
  end

  it "fans a message out to exact and wildcard subscribers, once each" do
    subscriptions = {
      exact: ["/chat/a"], star: ["/chat/*"], deep: ["/chat/**"], all: ["/**"],
      twice: ["/chat/a", "/chat/*", "/**"], other: ["/other"], deeper: ["/chat/a/b"]
    }
    clients = subscriptions.to_h do |name, channels|
      id = new_client
      channels.each { |channel| engine_call(:subscribe, id, channel) }
      [name, id]
    end
    batches = clients.transform_values { |id| connect(id) }
    publish("/chat/a", "hello")
    %i[exact star deep all twice].each do |name|
      expect(received(batches[name])).to eq(["hello"]), "#{name} should get it once"
    end
    consistently(duration: 0.5) do
      expect(batches[:other]).to be_empty
      expect(batches[:deeper]).to be_empty
    end
  end

  it "queues messages for a client between polls and delivers them, in order, when it connects" do
    client = new_client
    engine_call(:subscribe, client, "/news")
    %w[one two three].each { |word| publish("/news", word) }
    publish("/elsewhere", "not for it")
    let_time_pass(0.3) # the messages are published before it polls
    expect(received(connect(client))).to eq %w[one two three]
  end

  it "delivers nothing more to a destroyed client, and forgets its subscriptions" do
    gone = new_client
    kept = new_client
    [gone, kept].each { |id| engine_call(:subscribe, id, "/room") }
    engine_call(:destroy_client, gone)
    batches = connect(kept)
    publish("/room", "after")
    expect(received(batches)).to eq ["after"]
    expect(engine_call(:client_exists, gone)).to be false
  end
end

RSpec.describe "The Faye engine contract", :integration do
  include FayeOnlineSpec::Waiting

  # Faye's connection timeout for these engines: a client that stops
  # pinging is collected after twice it.
  def engine_timeout
    1
  end

  context "Faye's memory engine" do
    attr_reader :engine

    before do
      FayeOnlineSpec::Reactor.ensure_running
      @engine = FayeOnlineSpec::Reactor.run { Faye::Engine.get(timeout: engine_timeout) }
    end

    after { FayeOnlineSpec::Reactor.run { @engine.disconnect } }

    it_behaves_like "a Faye engine"
  end

  context "faye-online's memory engine (engine: :memory, the default without Redis)" do
    before do
      FayeOnlineSpec.load_gem!
      configuration = FayeOnlineSpec.deployments.find { |c| !c.redis? }
      configuration.prepare!
      FayeOnlineSpec::Reactor.ensure_running
      options = configuration.query_options(namespace: "fo_engine_#{Process.pid}_#{FayeOnlineSpec.next_number}")
                             .merge(timeout: engine_timeout, logger: Logger.new(nil))
      @server = FayeOnlineSpec::Reactor.run { FayeOnline::Server.new(FayeOnline::Configuration.new(options)) }
      expect(@server.faye_engine).to be_a(FayeOnline::NativeEngine)
    end

    after { @server&.close }

    def engine
      @server.engine
    end

    it_behaves_like "a Faye engine"

    include FayeOnlineSpec::EngineCalls

    it "collects every timed-out client when a listener raises for one, and keeps serving" do
      doomed = Array.new(3) { new_client }
      first = doomed.first
      disconnects = events(:disconnect)
      FayeOnlineSpec::Reactor.run { engine.bind(:disconnect) { |id| raise "a listener failed" if id == first } }
      FayeOnlineSpec::Waiting.wait_for(timeout: 4 * engine_timeout + 3, message: "the timed-out clients to go") do
        doomed.none? { |id| engine_call(:client_exists, id) }
      end
      expect(disconnects.map(&:first)).to include(*doomed)
      expect(engine_call(:client_exists, new_client)).to be true
    end
  end

  FayeOnlineSpec.deployments(:redis).first(1).each do |configuration|
    context "faye-online's engine on Redis (#{configuration.name})" do
      before do
        FayeOnlineSpec.load_gem!
        configuration.prepare!
        FayeOnlineSpec::Reactor.ensure_running
        namespace = "fo_engine_#{Process.pid}_#{FayeOnlineSpec.next_number}"
        @redis_space = configuration.redis_space(namespace)
        options = configuration.query_options(namespace: namespace)
                               .merge(timeout: engine_timeout, gc: 0.2, logger: Logger.new(nil))
        @server = FayeOnlineSpec::Reactor.run { FayeOnline::Server.new(FayeOnline::Configuration.new(options)) }
        expect(@server.faye_engine).to be_a(FayeOnline::RedisEngine)
      end

      after do
        @server&.close
        @redis_space&.clear!
        @redis_space&.close
      end

      def engine
        @server.engine
      end

      it_behaves_like "a Faye engine"
    end
  end
end
