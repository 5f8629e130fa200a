# frozen_string_literal: true

require "tmpdir"

# The contract of the tracker's Faye extension hook, called directly as Faye
# calls it: incoming(message, callback) calls the callback exactly once, with
# the very message it was given, never raises, and refuses bad input by
# setting message["error"] to a Bayeux error ("400:<field>:<text>",
# "403:<channel or field>:<text>"). spec/integration/auth_spec.rb and
# bad_input_spec.rb check the same rows through a real server, with what
# gets stored.
RSpec.describe "FayeOnline::Native::Tracker#incoming" do
  def self.tracker_options(dir, **options)
    url = "sqlite3:#{File.join(dir, 'records.sqlite3')}"
    FayeOnline::Migrator.migrate!(url)
    FayeOnline::Configuration.new({ database_url: url, migrate: true, store: :memory, **options },
                                  env: {}, root: dir).native_options
  end

  before(:all) do
    FayeOnlineSpec.load_gem!
    require "faye_online/migrator"
    @dir = Dir.mktmpdir("faye-online-contract")
    @tracker = FayeOnline::Native::Tracker.new(self.class.tracker_options(@dir))
  end

  after(:all) do
    @tracker&._close(5)
    FileUtils.rm_rf(@dir) if @dir
  end

  let(:room) { "/classes/4" }
  let(:good_auth) do
    { "room_channel" => room, "time_channel" => "/courses/5/lessons/1",
      "current_user" => { "uid" => 470_700, "uname" => "mvj3" } }
  end

  # Passes `message` through the hook; returns its error (nil if accepted)
  # once the callback was seen to get that same message, exactly once.
  def incoming(message, tracker: @tracker)
    seen = []
    expect { tracker.incoming(message, ->(m) { seen << m }) }.not_to raise_error
    expect(seen.size).to eq(1), "the callback ran #{seen.size} times"
    expect(seen.first).to equal(message)
    message.is_a?(Hash) ? message["error"] : nil
  end

  # A clientId this tracker handed out (as Faye's :handshake event tells it).
  def new_client_id(tracker: @tracker)
    "client#{FayeOnlineSpec.next_number}".tap { |id| tracker._handshake(id) }
  end

  def connect(auth, client_id: new_client_id, tracker: @tracker)
    incoming({ "channel" => "/meta/connect", "clientId" => client_id, "connectionType" => "long-polling",
               "auth" => auth }, tracker: tracker)
  end

  def with_user(changes)
    good_auth.merge("current_user" => good_auth["current_user"].merge(changes))
  end

  describe "good input" do
    it "accepts a first /meta/connect with auth, and the same again at every poll" do
      client_id = new_client_id
      3.times { expect(connect(good_auth, client_id: client_id)).to be_nil }
    end

    it "accepts auth with symbol keys and unknown extra fields" do
      auth = { room_channel: room, time_channel: "/courses/5/lessons/1",
               current_user: { uid: 470_701, uname: "sym" }, colour: "blue", tabs: [1, 2] }
      expect(connect(auth)).to be_nil
    end

    it "passes a /meta/connect without auth, or from a clientId it did not hand out (Faye answers 401)" do
      expect(incoming({ "channel" => "/meta/connect", "clientId" => new_client_id })).to be_nil
      expect(connect(good_auth, client_id: "notaclientofthisprocess")).to be_nil
    end

    it "passes the other meta channels and the application's own messages" do
      client_id = new_client_id
      [{ "channel" => "/meta/handshake", "version" => "1.0", "supportedConnectionTypes" => ["long-polling"] },
       { "channel" => "/meta/subscribe", "clientId" => client_id, "subscription" => "#{room}/user_list" },
       { "channel" => "/meta/subscribe", "clientId" => client_id, "subscription" => ["#{room}/user_changes", "/x"] },
       { "channel" => "/meta/unsubscribe", "clientId" => client_id, "subscription" => "#{room}/user_list" },
       { "channel" => room, "clientId" => client_id, "data" => { "text" => "hello" } },
       { "channel" => "#{room}/chat", "data" => "hi" },
       { "channel" => "/meta/disconnect", "clientId" => client_id },
       { "channel" => "/meta/disconnect", "clientId" => new_client_id }].each do |message|
        expect(incoming(message)).to be_nil, message.inspect
      end
    end
  end

  describe "bad input" do
    it "calls back with a message that is not a Hash, untouched" do
      ["/meta/connect", nil, [{ "channel" => "/meta/connect" }], 42, :connect].each do |message|
        incoming(message)
      end
    end

    it "passes fields of the wrong type that it does not read as refusals" do
      [{ "channel" => 5, "clientId" => new_client_id, "auth" => good_auth },
       { "channel" => nil },
       {},
       { "channel" => "/meta/connect", "clientId" => 470_700, "auth" => good_auth },
       { "channel" => "/meta/connect", "clientId" => "not an id!", "auth" => good_auth },
       { "channel" => "/meta/connect", "clientId" => "x" * 600, "auth" => good_auth },
       { "channel" => "/meta/subscribe", "subscription" => 5 },
       { "channel" => "/meta/subscribe", "subscription" => [nil, 1, {}] }].each do |message|
        expect(incoming(message)).to be_nil, message.inspect
      end
    end

    # What the auth becomes, from a good one.
    set = ->(changes) { ->(a) { a.merge(changes) } }
    set_user = ->(changes) { ->(a) { a.merge("current_user" => a["current_user"].merge(changes)) } }
    without = ->(key) { ->(a) { a.reject { |k, _| k == key } } }
    without_user = ->(key) { ->(a) { a.merge("current_user" => a["current_user"].reject { |k, _| k == key }) } }

    # [what, auth from a good one, the error's start (all of it where the
    # README's table gives all of it)]
    refusals = [
      ["auth that is a String", ->(_) { "470700" },
       "400:auth:must be an object with room_channel, time_channel and current_user"],
      ["auth that is an Array", ->(a) { [a] },
       "400:auth:must be an object with room_channel, time_channel and current_user"],
      ["an empty auth", ->(_) { {} }, "400:auth.room_channel:"],
      ["a room_channel that is a number", set.call("room_channel" => 4), "400:auth.room_channel:"],
      ["a room_channel with a wildcard", set.call("room_channel" => "/classes/*"), "400:auth.room_channel:"],
      ["a room_channel with '..'", set.call("room_channel" => "/classes/../4"), "400:auth.room_channel:"],
      ["a room_channel with a space", set.call("room_channel" => "/classes/4 5"), "400:auth.room_channel:"],
      ["a room_channel in unicode", set.call("room_channel" => "/classes/été"), "400:auth.room_channel:"],
      ["a room_channel with an empty segment", set.call("room_channel" => "/classes//4"), "400:auth.room_channel:"],
      ["a room_channel under /meta", set.call("room_channel" => "/meta/connect"), "400:auth.room_channel:"],
      ["a time_channel with a wildcard", set.call("time_channel" => "/courses/**"), "400:auth.time_channel:"],
      ["no current_user", without.call("current_user"), "400:auth.current_user:"],
      ["a current_user that is a String", set.call("current_user" => "mvj3"), "400:auth.current_user:"],
      ["no uid", without_user.call("uid"), "400:auth.current_user.uid:"],
      ["a uid given as a string", set_user.call("uid" => "470700"), "400:auth.current_user.uid:"],
      ["a uid given as an array", set_user.call("uid" => [470_700]), "400:auth.current_user.uid:"],
      ["a uid given as an object", set_user.call("uid" => { "id" => 1 }), "400:auth.current_user.uid:"],
      ["a uid of zero", set_user.call("uid" => 0), "400:auth.current_user.uid:"],
      ["a negative uid", set_user.call("uid" => -3), "400:auth.current_user.uid:"],
      ["a fractional uid", set_user.call("uid" => 1.5), "400:auth.current_user.uid:"],
      ["a uid past 64 bits", set_user.call("uid" => 2**64), "400:auth"],
      ["no uname", without_user.call("uname"), "400:auth.current_user.uname:"],
      ["a uname given as a number", set_user.call("uname" => 42), "400:auth.current_user.uname:"],
      ["a blank uname", set_user.call("uname" => "   "), "400:auth.current_user.uname:"],
      ["a uname over 100 characters", set_user.call("uname" => "x" * 101), "400:auth.current_user.uname:"],
      ["a huge uname (1 MiB)", set_user.call("uname" => "x" * (1 << 20)), "400:auth:"],
      ["a uname that is not UTF-8", set_user.call("uname" => "caf\xE9".b), "400:auth:holds a string that is not UTF-8"],
      ["an auth nested too deep", set.call("extra" => { "a" => { "b" => { "c" => { "d" => 1 } } } }), "400:auth:"],
      ["an auth with over 64 values", set.call("extra" => Array.new(100) { |i| i }), "400:auth:"],
      ["an auth holding a value that is not JSON", set.call("extra" => Object.new), "400:auth:"]
    ]

    refusals.each do |what, corrupt, error|
      it "refuses #{what} with #{error[/\A\d+:[^:]*/]}" do
        expect(connect(corrupt.call(good_auth))).to start_with(error)
      end
    end

    it "refuses a clientId that claims a second user, or other channels, with 403" do
      client_id = new_client_id
      expect(connect(good_auth, client_id: client_id)).to be_nil
      expect(connect(with_user("uid" => 5), client_id: client_id))
        .to eq "403:auth.current_user.uid:this clientId is already connected as another user"
      expect(connect(good_auth.merge("room_channel" => "/classes/5"), client_id: client_id))
        .to eq "403:auth:this clientId is already connected to other channels; open a new client"
      expect(connect(good_auth, client_id: client_id)).to be_nil
    end

    it "refuses a client's publication to a room's user_list or user_changes with 403" do
      client_id = new_client_id
      connect(good_auth, client_id: client_id)
      %w[user_list user_changes].each do |kind|
        channel = "#{room}/#{kind}"
        message = { "channel" => channel, "clientId" => client_id, "data" => { "count" => 99, "user_list" => [1] } }
        expect(incoming(message)).to eq "403:#{channel}:only the server publishes online lists"
        expect(incoming(message.merge("clientId" => nil, "error" => nil))).to eq "403:#{channel}:only the server publishes online lists"
      end
    end
  end

  context "with a secret" do
    secret = "contract-secret-0123456789"
    define_method(:secret) { secret }

    before(:all) do
      @signed_dir = Dir.mktmpdir("faye-online-contract")
      @signed = FayeOnline::Native::Tracker.new(self.class.tracker_options(@signed_dir, secret: secret))
    end

    after(:all) do
      @signed&._close(5)
      FileUtils.rm_rf(@signed_dir) if @signed_dir
    end

    def signed(auth, expires: Time.now.to_i + 3600)
      user = auth["current_user"]
      token = FayeOnline::Native.sign(secret, user["uid"], user["uname"], auth["room_channel"], auth["time_channel"], expires)
      auth.merge("expires" => expires, "token" => token)
    end

    it "accepts a token the app signed, and refuses none, a forged, an expired or a mismatched one with 403" do
      expect(connect(signed(good_auth), client_id: new_client_id(tracker: @signed), tracker: @signed)).to be_nil
      [[good_auth, "403:auth.token:"],
       [signed(good_auth).merge("token" => "0" * 64), "403:auth.token:"],
       [signed(good_auth, expires: Time.now.to_i - 60), "403:auth.token:"],
       [signed(good_auth).merge("room_channel" => "/classes/5"), "403:auth.token:"],
       [signed(good_auth).merge("expires" => "soon"), "403:auth.expires:"]].each do |auth, error|
        expect(connect(auth, client_id: new_client_id(tracker: @signed), tracker: @signed)).to start_with(error), auth.inspect
      end
    end

    it "lets only holders of a token for the room subscribe to its user_list" do
      client_id = new_client_id(tracker: @signed)
      subscribe = { "channel" => "/meta/subscribe", "clientId" => client_id, "subscription" => "#{room}/user_list" }
      expect(incoming(subscribe.merge("auth" => signed(good_auth)), tracker: @signed)).to be_nil
      expect(incoming(subscribe.dup, tracker: @signed)).to start_with("403:#{room}/user_list:")
      other_room = signed(good_auth.merge("room_channel" => "/classes/5"))
      expect(incoming(subscribe.merge("auth" => other_room), tracker: @signed)).to start_with("403:#{room}/user_list:")
    end
  end
end
