# frozen_string_literal: true

# One faye-online server per example group, on a configuration from
# FayeOnlineSpec.configurations, with a Redis namespace of its own and empty
# tables. Examples keep apart by using fresh rooms, lessons and uids. Groups
# get it through on_each_deployment (spec/support/deployments.rb):
#
#   on_each_deployment(server: { timeout: 1, gc: 1 }) do |configuration| ... end
RSpec.shared_context "a faye-online server" do |configuration, server_options = {}|
  define_method(:configuration) { configuration }

  before(:all) do
    FayeOnlineSpec.load_gem!
    configuration.prepare!
    @namespace = "fo_test_#{Process.pid}_#{FayeOnlineSpec.next_number}"
    @redis_space = configuration.redis_space(@namespace)
    @redis_space&.clear!
    @faye_clients = []
    @server = FayeOnlineSpec::ServerProcess.new(
      configuration.server_env(namespace: @namespace, **server_options)
    ).start
    FayeOnline.configure(**configuration.query_options(namespace: @namespace))
  end

  after(:all) do
    @faye_clients&.each(&:close)
    @server&.stop
    @redis_space&.clear!
    @redis_space&.close
  end

  before do
    @log_mark = @server&.log_size || 0
  end

  after do |example|
    @server&.print_log(since: @log_mark) if example.exception
    errors = FayeOnlineSpec::Reactor.take_errors
    raise "errors in Faye client callbacks: #{errors.map(&:full_message).join("\n")}" unless errors.empty?
  end

  attr_reader :server, :redis_space, :namespace

  def sql
    configuration.sql
  end

  def server_url
    server.url
  end

  # -- names: fresh for every call ------------------------------------------

  def new_room
    "/classes/#{FayeOnlineSpec.next_number}"
  end

  def new_lesson
    "/courses/#{FayeOnlineSpec.next_number}/lessons/1"
  end

  def new_user(uname = nil)
    number = FayeOnlineSpec.next_number
    { "uid" => 470_000 + number, "uname" => uname || "user#{number}" }
  end

  def user_list_channel(room)
    "#{room}/user_list"
  end

  def auth_for(user, room:, lesson:)
    { "room_channel" => room, "time_channel" => lesson, "current_user" => user }
  end

  # -- clients ---------------------------------------------------------------

  def bayeux_client
    FayeOnlineSpec::BayeuxClient.new(server_url)
  end

  # A real Faye::Client, disconnected when the group ends.
  def faye_client(auth: nil)
    FayeOnlineSpec::FayeClient.new(server_url, auth: auth).tap { |client| @faye_clients << client }
  end

  # A client without auth (not a user) subscribed to a room's user list.
  def watch(room)
    faye_client.subscribe(user_list_channel(room))
  end

  # The user lists a watcher has received for a room, oldest first.
  def lists_seen(watcher, room)
    watcher.messages(user_list_channel(room))
  end

  # One browser tab of a user, as a raw Bayeux client: handshake and a first
  # /meta/connect carrying auth, which must succeed; through +via+ (a
  # ServerProcess) rather than the group's server when given.
  def join(user, room:, lesson:, via: nil)
    tab = (via ? FayeOnlineSpec::BayeuxClient.new(via.url) : bayeux_client).handshake!
    reply = tab.connect(auth: auth_for(user, room: room, lesson: lesson))
    expect(reply).to include("successful" => true), "first /meta/connect refused: #{reply.inspect}"
    tab
  end

  def leave(tab)
    reply = tab.disconnect
    expect(reply).to include("successful" => true), "/meta/disconnect refused: #{reply.inspect}"
    reply
  end

  def started_key(lesson)
    "#{lesson}_started_at"
  end

  def spended_key(lesson)
    "#{lesson}_spended"
  end

  def online_uids(room)
    sql.online_uids(room) || []
  end

  def online_times(uid)
    sql.online_times(uid) || {}
  end

  def now
    FayeOnlineSpec::Waiting.monotonic_now
  end
end
