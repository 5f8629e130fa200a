# frozen_string_literal: true

require "webrick"

# Presence events: FayeOnline.on callbacks in the Faye server, and the
# webhook it sends them to, received by a real HTTP server in this process.
RSpec.describe "Events and webhooks", :integration do
  # An HTTP receiver on a port of its own, which the test may stop and start
  # again on the same port: each request's body and signature, kept.
  class WebhookReceiver
    attr_reader :port, :requests

    def initialize
      @port = FayeOnlineSpec::ServerProcess.free_port
      @requests = Queue.new
    end

    def url
      "http://127.0.0.1:#{port}/hooks/presence"
    end

    def start
      requests = @requests
      @server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: port, AccessLog: [],
                                        Logger: WEBrick::Log.new(File::NULL))
      @server.mount_proc("/hooks/presence") do |request, response|
        requests << { body: request.body.to_s, signature: request["X-Faye-Online-Signature"],
                      delivery: request["X-Faye-Online-Delivery"] }
        response.status = 204
      end
      @thread = Thread.new { @server.start }
      FayeOnlineSpec::Waiting.wait_for(timeout: 10, message: "the webhook receiver") do
        TCPSocket.new("127.0.0.1", port).close
        true
      rescue SystemCallError
        false
      end
      self
    end

    def stop
      @server&.shutdown
      @thread&.join(5)
      @server = nil
    end

    # Every request so far: [[body, signature, delivery], ...]
    def all
      @all ||= []
      @all << @requests.pop until @requests.empty?
      @all
    end

    # The events of every request, in order, those of +room+ only as
    # [event, uname] pairs.
    def events(room)
      all.flat_map { |r| JSON.parse(r[:body])["events"] }
         .select { |e| e["room"] == room }
         .map { |e| [e["event"], e.dig("user", "uname")] }
    end
  end

  secret = "webhook-secret-for-the-tests-0123"
  receiver = WebhookReceiver.new
  events_log = FayeOnlineSpec.tmp_path("test-logs", "events-#{Process.pid}-#{receiver.port}.jsonl")

  # Presence events in the order they came, and apart the time credited
  # (told once it is written to SQL, so after what presence told
  # meanwhile), in its own order.
  def apart(events)
    credited = events.select { |e| e.first == "time_credited" }
    [events - credited, credited]
  end

  def logged_events(path, room)
    return [] unless File.exist?(path)

    File.readlines(path).map { |line| JSON.parse(line) }.select { |e| e["room"] == room }
  end

  before(:all) { receiver.start }
  after(:all) { receiver.stop }

  on_each_deployment(server: { timeout: 2, gc: 1, webhook_url: receiver.url, webhook_secret: secret,
                               webhook_delay: 1.5 }) do |configuration|
    # The shared server of this group was started without the callbacks'
    # log; each example that needs it starts its own.
    def server_with_callbacks(log)
      env = configuration.server_env(namespace: namespace, timeout: 2, gc: 1, webhook_url: receiver_url,
                                     webhook_secret: webhook_secret, webhook_delay: 1.5)
      FayeOnlineSpec::ServerProcess.new(env.merge("FAYE_ONLINE_TEST_EVENTS_LOG" => log)).start
    end

    define_method(:receiver_url) { receiver.url }
    define_method(:webhook_secret) { secret }

    it "calls the app's callbacks and posts signed batches: a join, a reload within the delay (nothing), a leave" do
      host = server_with_callbacks(events_log)
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      bob = new_user("bob")
      ann_tab = join(ann, room: room, lesson: lesson, via: host)
      bob_tab = join(bob, room: room, lesson: lesson, via: host)
      # bob reloads his page: his tab leaves and a new one joins at once.
      leave(bob_tab)
      bob_tab = join(bob, room: room, lesson: lesson, via: host)
      leave(ann_tab)
      leave(bob_tab)

      # The callbacks see every change as it happens, the reload's too; the
      # callback that raises is logged, and the others go on.
      eventually do
        expect(apart(logged_events(events_log, room).map { |e| [e["event"], e.dig("user", "uname")] }))
          .to eq [[%w[occupied ann], %w[joined ann], %w[joined bob], %w[left bob], %w[joined bob], %w[left ann],
                   %w[left bob], %w[vacated bob]],
                  [%w[time_credited bob], %w[time_credited ann], %w[time_credited bob]]]
      end
      credited = logged_events(events_log, room).select { |e| e["event"] == "time_credited" }
      expect(credited).to all(include("lesson" => lesson, "seconds" => a_value >= 0, "started_at" => a_string_ending_with("Z")))
      expect(File.read(host.log_path)).to include("a joined callback raised RuntimeError: a callback that always fails")
                                      .and(satisfy { |log| log.scan("a callback that always fails").size == 3 })

      # The webhook: the reload's left and joined cancel out within the
      # delay; the rest arrives, signed, once.
      eventually(timeout: 15) do
        expect(apart(receiver.events(room)))
          .to eq [[%w[occupied ann], %w[joined ann], %w[joined bob], %w[left ann], %w[left bob], %w[vacated bob]],
                  [%w[time_credited bob], %w[time_credited ann], %w[time_credited bob]]]
      end
      requests = receiver.all.select { |r| r[:body].include?(room) }
      requests.each do |request|
        expect(FayeOnline::Webhook.verify(request[:body], request[:signature], secret)).to be_an(Array)
        expect(FayeOnline.webhook_events(request[:body], request[:signature], secret: secret))
          .to eq JSON.parse(request[:body])["events"]
        expect(JSON.parse(request[:body])["id"]).to eq request[:delivery]
      end
      expect(requests.map { |r| r[:delivery] }.uniq.size).to eq requests.size

      # What the helper refuses: a forged signature, an altered body, another
      # secret, no signature, a body that is not JSON.
      body = requests.first[:body]
      signature = requests.first[:signature]
      expect(FayeOnline.webhook_events(body, "sha256=#{'0' * 64}", secret: secret)).to be_nil
      expect(FayeOnline.webhook_events(body.sub("ann", "eve"), signature, secret: secret)).to be_nil
      expect(FayeOnline.webhook_events(body, signature, secret: "another-secret-0123456789")).to be_nil
      expect(FayeOnline.webhook_events(body, nil, secret: secret)).to be_nil
      expect(FayeOnline.webhook_events(body, signature[0..-2], secret: secret)).to be_nil
      garbage = "not json"
      expect(FayeOnline.webhook_events(garbage, FayeOnline::Webhook.signature(garbage, secret), secret: secret)).to be_nil
    ensure
      host&.stop
    end

    it "keeps events while the receiver is down for 10 s and sends them all, once, when it returns" do
      room = new_room
      lesson = new_lesson
      receiver.stop
      down_at = FayeOnlineSpec::Waiting.monotonic_now
      users = Array.new(4) { new_user }
      tabs = users.map { |user| join(user, room: room, lesson: lesson) }
      tabs.first(2).each { |tab| leave(tab) }
      let_time_pass(10 - (FayeOnlineSpec::Waiting.monotonic_now - down_at))
      receiver.start
      expected = [["occupied", users[0]["uname"]]] +
                 users.map { |u| ["joined", u["uname"]] } +
                 users.first(2).flat_map { |u| [["left", u["uname"]], ["time_credited", u["uname"]]] }
      # The two other tabs never poll: past the session timeout (9 s here)
      # the sweep ends them, meanwhile, and the last one vacates the room.
      stayers = users.last(2).map { |u| u["uname"] }
      swept = stayers.flat_map { |name| [["left", name], ["time_credited", name]] } +
              [["vacated", satisfy { |name| stayers.include?(name) }]]
      # The back-off reaches 8 s while the receiver is down: the next try
      # comes at most that long after it returns.
      eventually(timeout: 20) do
        got = receiver.events(room)
        expect(got.first(expected.size)).to contain_exactly(*expected)
        expect(apart(got.first(expected.size))).to eq apart(expected)
        expect(got.drop(expected.size)).to contain_exactly(*swept)
      end
      expect(File.read(server.log_path)).to include("webhook receiver http://127.0.0.1:#{receiver.port}/hooks/presence")
                                        .and include("takes events again")
    ensure
      receiver.start unless receiver.instance_variable_get(:@server)
    end
  end

  on_each_deployment(only: :redis, server: { webhook_url: receiver.url, webhook_secret: secret,
                                             webhook_delay: 0.5 }) do |configuration|
    it "sends each event once when two processes serve the room" do
      other = FayeOnlineSpec::ServerProcess.new(
        configuration.server_env(namespace: namespace, webhook_url: receiver.url, webhook_secret: secret,
                                 webhook_delay: 0.5)
      ).start
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      bob = new_user("bob")
      ann_here = join(ann, room: room, lesson: lesson)
      ann_there = join(ann, room: room, lesson: lesson, via: other)
      bob_there = join(bob, room: room, lesson: lesson, via: other)
      [ann_here, ann_there, bob_there].each { |tab| leave(tab) }
      eventually(timeout: 15) do
        expect(receiver.events(room)).to contain_exactly(
          %w[occupied ann], %w[joined ann], %w[joined bob], %w[left ann], %w[time_credited ann],
          %w[left bob], %w[vacated bob], %w[time_credited bob]
        )
      end
    ensure
      other&.stop
    end
  end
end
