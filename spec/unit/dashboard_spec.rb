# frozen_string_literal: true

require "cgi"
require "logger"
require "timeout"
require "tmpdir"
require "eventmachine"
require "faye_online/configuration"
require "faye_online/client_scripts"
require "faye_online/reader"
require "faye_online/reports"
require "faye_online/dashboard"

module FayeOnlineSpec
  # What a Dashboard asks of the server it belongs to: the configuration,
  # the reader, a logger, and Faye's engine, which here records what is
  # published.
  class DashboardHost
    attr_reader :config, :query, :logger, :published

    def initialize(config:, query:)
      @config = config
      @query = query
      @logger = Logger.new(IO::NULL)
      @published = []
    end

    def engine
      self
    end

    def publish(message)
      @published << message
    end
  end
end

# FayeOnline::Dashboard as a Rack app and a Faye extension, without a Faye
# server: a host of the spec's own gives it its configuration and a reader
# (FayeOnlineSpec::ScriptedReader). spec/browser/dashboard_spec.rb drives
# the page itself.
RSpec.describe FayeOnline::Dashboard do
  token = "dashboard-token-0123"

  let(:lesson) { "/courses/5/lessons/1" }
  let(:started_ms) { ((Time.now.to_f - 90) * 1000).round }
  let(:reader) do
    FayeOnlineSpec::ScriptedReader.new(
      status: {
        "source" => "hot",
        "rooms" => [{ "room" => "/classes/4", "count" => 2,
                      "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => %w[c1 c2] },
                                  { "uid" => 2, "uname" => "bob", "client_ids" => %w[c3] }] },
                    { "room" => "/classes/5", "count" => 1,
                      "users" => [{ "uid" => 3, "uname" => "cat", "client_ids" => %w[c4] }] }],
        "lessons" => [{ "lesson" => lesson, "count" => 1,
                        "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => %w[c1], "started_ms" => started_ms }] }]
      },
      online_times: { [1, lesson] => 1290 },
      # A lesson that ended an hour ago, and one a day ago (not shown).
      schedules: [{ "lesson" => finished_lesson, "starts_ms" => now_ms - 7_200_000, "ends_ms" => now_ms - 3_600_000 },
                  { "lesson" => "/courses/1/lessons/1", "starts_ms" => now_ms - 90_000_000, "ends_ms" => now_ms - 86_400_000 }],
      lesson_times: {
        lesson => [{ "uid" => 1, "uname" => "ann", "attended_ms" => 90_000, "engaged_ms" => 60_000,
                     "first_join_ms" => started_ms, "last_leave_ms" => nil, "online" => true, "state" => "idle" }],
        finished_lesson => [{ "uid" => 2, "uname" => "bob", "attended_ms" => 3_000_000, "engaged_ms" => 1_800_000,
                              "first_join_ms" => now_ms - 6_800_000, "last_leave_ms" => now_ms - 3_600_000,
                              "online" => false, "state" => nil }]
      }
    )
  end
  let(:now_ms) { (Time.now.to_f * 1000).round }
  let(:finished_lesson) { "/courses/5/lessons/0" }
  let(:fallback) { ->(_env) { [418, { "Content-Type" => "text/plain" }, ["the fallback\n"]] } }

  def host(dashboard_token, query: reader)
    config = FayeOnline::Configuration.new({ store: :memory, dashboard: dashboard_token, mount: "/live" },
                                           env: {}, root: @root)
    FayeOnlineSpec::DashboardHost.new(config: config, query: FayeOnline::Reader.new(query))
  end

  def get(dashboard, path, query_string = "", headers = {})
    dashboard.call({ "REQUEST_METHOD" => "GET", "PATH_INFO" => path, "QUERY_STRING" => query_string }.merge(headers))
  end

  def with_cookie(token)
    { "HTTP_COOKIE" => "other=1; faye_online_dashboard=#{token}" }
  end

  around do |example|
    Dir.mktmpdir do |dir|
      @root = dir
      before = Thread.list
      example.run
    ensure
      # Each enabled dashboard starts a sampler that samples once a minute
      # for as long as the process runs; it names itself first thing.
      (Thread.list - before).select { |t| t.name == "faye-online-dashboard" }.each(&:kill)
    end
  end

  context "without a token" do
    let(:dashboard) { described_class.new(host(nil), FayeOnline::ClientScripts.new) }

    it "is off: its paths answer what the Faye server answers elsewhere (404)" do
      expect(dashboard).not_to be_enabled
      %w[/faye-online/dashboard /faye-online/dashboard.json].each do |path|
        expect(get(dashboard, path, "token=").first).to eq 404
        expect(get(dashboard, path, "token=#{token}").first).to eq 404
      end
      expect(dashboard.allowed?(token)).to be false
    end

    it "starts no sampler: nothing reads the stores" do
      dashboard
      sleep 0.1
      expect(reader.calls).to be_empty
    end
  end

  context "with a token" do
    let(:host_of_dashboard) { host(token) }
    let(:dashboard) { described_class.new(host_of_dashboard, fallback) }

    it "takes the token out of the address on the first visit, into a cookie for its own paths" do
      status, headers, body = get(dashboard, "/faye-online/dashboard", "token=#{token}")
      expect(status).to eq 303
      expect(headers).to include("Location" => "/faye-online/dashboard", "Cache-Control" => "no-store")
      expect(headers["Set-Cookie"]).to eq "faye_online_dashboard=#{token}; Path=/faye-online; HttpOnly; SameSite=Strict"
      expect(body.join).not_to include("<html")
      https = get(dashboard, "/faye-online/dashboard", "token=#{token}", "HTTP_X_FORWARDED_PROTO" => "https")
      expect(https[1]["Set-Cookie"]).to end_with("; Secure")
    end

    it "serves the page to the cookie, naming Faye's mount and holding the token for Faye" do
      status, headers, body = get(dashboard, "/faye-online/dashboard", "", with_cookie(token))
      expect(status).to eq 200
      expect(headers).to include("Content-Type" => "text/html; charset=utf-8", "Cache-Control" => "no-store",
                                 "Content-Length" => body.join.bytesize.to_s, "Referrer-Policy" => "no-referrer")
      # The page finds Faye from this attribute (escaped as HTML).
      expect(CGI.unescapeHTML(body.join[/data-mount="([^"]*)"/, 1])).to eq "/live"
      expect(CGI.unescapeHTML(body.join[/data-token="([^"]*)"/, 1])).to eq token
      expect(get(dashboard, "/faye-online/dashboard", "", with_cookie("wrong")).first).to eq 403
    end

    it "gives the JSON to the cookie, to a bearer token and to ?token=, and to nothing else" do
      ok = [[with_cookie(token), ""], [{ "HTTP_AUTHORIZATION" => "Bearer #{token}" }, ""], [{}, "token=#{token}"]]
      ok.each { |headers, query| expect(get(dashboard, "/faye-online/dashboard.json", query, headers).first).to eq 200 }
      bad = [[with_cookie("wrong"), ""], [{ "HTTP_AUTHORIZATION" => "Bearer wrong" }, ""],
             [{ "HTTP_AUTHORIZATION" => token }, ""]]
      bad.each { |headers, query| expect(get(dashboard, "/faye-online/dashboard.json", query, headers).first).to eq 403 }
    end

    it "serves no clientId over HTTP: a clientId is all it takes to act as that client" do
      _, _, body = get(dashboard, "/faye-online/dashboard.json", "", with_cookie(token))
      text = body.join
      %w[c1 c2 c3 c4].each { |client_id| expect(text).not_to include(%("#{client_id}")) }
      expect(JSON.parse(text)["rooms"].first["users"].map { |u| u["tabs"] }).to eq [2, 1]
    end

    it "answers 403 for the page without the token or with another" do
      ["", "token=", "token=wrong", "token=#{token}x", "token=#{token[0..-2]}", "tok=#{token}"].each do |query|
        status, headers, body = get(dashboard, "/faye-online/dashboard", query)
        expect(status).to eq(403), query
        expect(headers).to include("Content-Type" => "text/plain; charset=utf-8")
        expect(body.join).to eq "This dashboard needs its token: add ?token=... to the address.\n"
      end
    end

    it "answers 403 JSON for the data without the token or with another" do
      ["", "token=wrong", "token=#{token.upcase}"].each do |query|
        status, headers, body = get(dashboard, "/faye-online/dashboard.json", query)
        expect(status).to eq(403), query
        expect(headers).to include("Content-Type" => "application/json")
        expect(JSON.parse(body.join)).to eq("error" => "the dashboard needs its token")
      end
    end

    it "gives the JSON the page shows: rooms, lessons with running and total seconds, online count, history" do
      status, headers, body = get(dashboard, "/faye-online/dashboard.json", "token=#{token}")
      expect(status).to eq 200
      expect(headers).to include("Content-Type" => "application/json", "Cache-Control" => "no-store")
      data = JSON.parse(body.join)
      expect(data.keys).to contain_exactly("now_ms", "online", "rooms", "lessons", "finished", "history")
      expect(data["now_ms"]).to be_within(5_000).of((Time.now.to_f * 1000).round)
      expect(data["online"]).to eq 3
      expect(data["rooms"]).to eq [
        { "room" => "/classes/4", "count" => 2,
          "users" => [{ "uid" => 1, "uname" => "ann", "tabs" => 2 }, { "uid" => 2, "uname" => "bob", "tabs" => 1 }] },
        { "room" => "/classes/5", "count" => 1, "users" => [{ "uid" => 3, "uname" => "cat", "tabs" => 1 }] }
      ]
      expect(data["lessons"]).to match [{
        "lesson" => lesson, "count" => 1,
        "users" => [{ "uid" => 1, "uname" => "ann", "tabs" => 1, "started_ms" => started_ms,
                      "seconds" => be_within(5).of(90), "total_seconds" => 1290,
                      "state" => "idle", "attended_ms" => 90_000, "engaged_ms" => 60_000 }]
      }]
      expect(data["finished"].map { |l| l["lesson"] }).to eq [finished_lesson]
      expect(data["finished"][0]["thresholds"]).to eq("late_after" => 300, "early_by" => 300, "min_attended" => 50)
      expect(data["finished"][0]["students"]).to match [include("uid" => 2, "uname" => "bob", "status" => "late",
                                                                "attended_percent" => 83.3, "engaged_percent" => 50.0)]
      expect(data["history"]).to all(match([an_instance_of(Integer), an_instance_of(Integer)]))
      expect(data["history"].last[1]).to eq 3
      expect(reader.calls).to include([:_online_time, 1, lesson])
    end

    it "builds the JSON off the reactor when the server can answer later" do
      answers = Queue.new
      env = { "REQUEST_METHOD" => "GET", "PATH_INFO" => "/faye-online/dashboard.json",
              "QUERY_STRING" => "token=#{token}", "async.callback" => ->(response) { answers << response } }
      expect(FayeOnlineSpec::Reactor.run { dashboard.call(env) }).to eq [-1, {}, []]
      status, headers, body = Timeout.timeout(5) { answers.pop }
      expect([status, headers["Content-Type"]]).to eq [200, "application/json"]
      expect(JSON.parse(body.join)["online"]).to eq 3
    end

    it "answers 503 with the error when the stores cannot be read, later" do
      failing = Object.new
      def failing._status
        raise FayeOnline::StoreError, "Redis is away"
      end
      dashboard = described_class.new(host(token, query: failing), fallback)
      answers = Queue.new
      env = { "REQUEST_METHOD" => "GET", "PATH_INFO" => "/faye-online/dashboard.json",
              "QUERY_STRING" => "token=#{token}", "async.callback" => ->(response) { answers << response } }
      FayeOnlineSpec::Reactor.run { dashboard.call(env) }
      status, _, body = Timeout.timeout(5) { answers.pop }
      expect(status).to eq 503
      expect(JSON.parse(body.join)).to eq("error" => "FayeOnline::StoreError: Redis is away")
    end

    it "leaves every other path to the app behind it" do
      expect(get(dashboard, "/faye-online/faye-online.js").first).to eq 418
      expect(get(dashboard, "/faye-online/dashboard/x", "token=#{token}").first).to eq 418
    end

    it "tells the dashboards which room changed, on its channel" do
      dashboard.changed("/classes/4", "count" => 2, "joined" => [{ "uid" => 1, "uname" => "ann" }])
      expect(host_of_dashboard.published)
        .to eq [{ "channel" => "/faye_online/dashboard", "data" => { "room" => "/classes/4", "count" => 2 } }]
    end

    describe "its Faye extension" do
      def incoming(dashboard, message)
        seen = []
        dashboard.guard.incoming(message, ->(m) { seen << m })
        expect(seen.size).to eq 1
        expect(seen.first).to equal message
        message["error"]
      end

      def subscribe(ext)
        { "channel" => "/meta/subscribe", "clientId" => "c1", "subscription" => described_class::CHANNEL, "ext" => ext }
      end

      it "lets only holders of the token subscribe to the dashboard's channel" do
        expect(incoming(dashboard, subscribe("dashboard_token" => token))).to be_nil
        [nil, {}, { "dashboard_token" => "wrong" }, { "dashboard_token" => 42 }, token].each do |ext|
          expect(incoming(dashboard, subscribe(ext))).to eq("403:/faye_online/dashboard:the dashboard needs its token"),
                                                          ext.inspect
        end
        list = subscribe("dashboard_token" => "wrong").merge("subscription" => ["/classes/4/user_list", described_class::CHANNEL])
        expect(incoming(dashboard, list)).to start_with("403:/faye_online/dashboard:")
      end

      it "lets no client publish on the dashboard's channel, token or not" do
        message = { "channel" => described_class::CHANNEL, "data" => {}, "ext" => { "dashboard_token" => token } }
        expect(incoming(dashboard, message)).to eq "403:/faye_online/dashboard:only the server publishes here"
      end

      it "leaves every other message alone" do
        [{ "channel" => "/meta/subscribe", "subscription" => "/classes/4/user_list" },
         { "channel" => "/classes/4", "data" => { "text" => "hi" } },
         { "channel" => "/meta/connect", "clientId" => "c1" }].each do |message|
          expect(incoming(dashboard, message)).to be_nil
        end
      end
    end
  end
end
