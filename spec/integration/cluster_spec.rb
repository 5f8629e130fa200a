# frozen_string_literal: true

# Several Faye processes on Faye's engine on Redis serve one site with no
# sticky sessions: every request of every client goes to a process picked
# at random. Messages reach each subscriber once; presence, the login log
# and lesson time are what a single process would have recorded.
RSpec.describe "A cluster without sticky sessions", :integration do
  on_each_deployment(only: :redis, server: { timeout: 2, gc: 1 }) do |configuration|
    # A raw Bayeux client whose every request goes to one of +servers+,
    # picked at random each time.
    def roaming_client(servers)
      FayeOnlineSpec::BayeuxClient.new(servers.map(&:url))
    end

    def start_peer
      FayeOnlineSpec::ServerProcess.new(configuration.server_env(namespace: namespace, timeout: 2, gc: 1)).start
    end

    def wall_ms
      (Time.now.to_f * 1000).round
    end

    it "delivers chat to every subscriber once and keeps presence exact, through three processes at random" do
      servers = [server, start_peer, start_peer]
      room = new_room
      lesson = new_lesson
      users = Array.new(6) { new_user }
      joined_at = {}
      tabs = users.to_h do |user|
        tab = roaming_client(servers).handshake!
        joined_at[user["uid"]] = wall_ms
        expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
        expect(tab.subscribe("/chat#{room}")).to include("successful" => true)
        [user["uid"], tab]
      end
      eventually { expect(FayeOnline.online_users(room).map { |u| u["uid"] }).to eq users.map { |u| u["uid"] }.sort }

      # Each user says five things; each says them through random processes.
      sent = tabs.flat_map do |uid, tab|
        Array.new(5) do |i|
          expect(tab.publish("/chat#{room}", { "from" => uid, "n" => i })).to include("successful" => true)
          [uid, i]
        end
      end
      tabs.each_value do |tab|
        eventually(timeout: 10) do
          tab.connect
          expect(tab.deliveries.size).to be >= sent.size
        end
      end
      consistently(duration: 1) { tabs.each_value(&:connect) }
      tabs.each do |uid, tab|
        got = tab.deliveries.map { |d| [d["data"]["from"], d["data"]["n"]] }
        expect(got.sort).to eq(sent.sort), "user #{uid} got #{got.size} messages, #{got.size - got.uniq.size} twice"
        # Each sender's messages arrive in the order sent.
        tabs.each_key { |from| expect(got.select { |(f, _)| f == from }.map(&:last)).to eq [0, 1, 2, 3, 4] }
      end

      # Half leave through a random process; the others stop polling and
      # are collected after twice Faye's timeout.
      leaving, vanishing = users.each_slice(3).to_a
      ended_at = {}
      leaving.each do |user|
        ended_at[user["uid"]] = wall_ms
        expect(tabs[user["uid"]].disconnect).to include("successful" => true)
      end
      vanishing.each { |user| ended_at[user["uid"]] = wall_ms.tap { tabs[user["uid"]].connect } }
      eventually(timeout: 20) { expect(FayeOnline.online_users(room)).to eq [] }
      users.each do |user|
        uid = user["uid"]
        eventually { expect(sql.log_entries(uid).map(&:first)).to eq [1, 0] }
        eventually { expect(online_times(uid)).not_to have_key(started_key(lesson)) }
        expected = (ended_at[uid] - joined_at[uid]) / 1000.0
        expect(online_times(uid)[spended_key(lesson)]).to be_within(1.0).of(expected),
          "user #{uid}: credited #{online_times(uid).inspect}, online #{expected.round(2)} s"
      end
    ensure
      servers&.drop(1)&.each(&:stop)
    end

    it "writes one interval ledger from three processes: each interval once, the user's tabs merged" do
      servers = [server, start_peer, start_peer]
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      # Three tabs, each joined through another process; every later
      # request goes to a process picked at random.
      tabs = servers.map do |joined_through|
        tab = roaming_client(servers)
        tab.through(joined_through.url) do |t|
          t.handshake!
          expect(t.connect(auth: auth_for(ann, room: room, lesson: lesson))).to include("successful" => true)
        end
        tab
      end
      user_state = -> { FayeOnline.lesson_times(lesson).find { |u| u["uid"] == ann["uid"] }&.fetch("state") }
      report = lambda do |tab, state, user_becomes|
        # Every tab polls (Faye's timeout is 2 s here), then one reports.
        tabs.each(&:connect)
        expect(tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => state)).to include("successful" => true)
        eventually { expect(user_state.call).to eq user_becomes }
      end
      started = wall_ms
      report.call(tabs[0], "active", "active")
      report.call(tabs[1], "hidden", "active")
      report.call(tabs[2], "active", "active")
      report.call(tabs[0], "idle", "active")
      report.call(tabs[2], "hidden", "idle")
      report.call(tabs[1], "active", "active")
      tabs.each { |tab| expect(tab.disconnect).to include("successful" => true) }
      left = wall_ms
      eventually do
        rows = FayeOnline.intervals(lesson, user: ann["uid"])
        expect(rows.count { |r| r["measure"] == "attended" }).to eq 3
        expect(rows.count { |r| r["measure"] == "engaged" }).to eq 3
      end
      rows = FayeOnline.intervals(lesson, user: ann["uid"])
      ids = tabs.map(&:client_id)
      expect(rows.select { |r| r["measure"] == "engaged" }.map { |r| [ids.index(r["client_id"]), r["ended_by"]] })
        .to contain_exactly([0, "idle"], [2, "hidden"], [1, "left"])
      expect(rows.select { |r| r["measure"] == "attended" }.map { |r| r["ended_by"] }).to eq %w[left left left]
      # The union over the tabs: engaged from the first report to the
      # leave, without a gap (one tab was active all along but for the
      # moment between tab 2's hidden and tab 1's active).
      engaged = rows.select { |r| r["measure"] == "engaged" }.map { |r| [r["started_ms"], r["ended_ms"]] }.sort
      union = engaged.each_with_object([]) do |(a, b), out|
        out.any? && a <= out.last[1] ? out.last[1] = [out.last[1], b].max : out << [a, b]
      end.sum { |a, b| b - a }
      time = FayeOnline.lesson_time(ann["uid"], lesson)
      expect(time["engaged_ms"]).to eq union
      expect(time["attended_ms"]).to be_within(1000).of(left - started)
      expect(time["engaged_ms"]).to be <= time["attended_ms"]
    end

    it "lets the clients of a process killed with -9 go on through the others, with what was queued for them" do
      doomed = start_peer
      room = new_room
      lesson = new_lesson
      user = new_user
      tab = FayeOnlineSpec::BayeuxClient.new(doomed.url).handshake!
      expect(tab.connect(auth: auth_for(user, room: room, lesson: lesson))).to include("successful" => true)
      expect(tab.subscribe("/news#{room}")).to include("successful" => true)
      eventually { expect(FayeOnline.online_users(room).map { |u| u["uid"] }).to eq [user["uid"]] }
      eventually { expect(sql.log_entries(user["uid"]).map(&:first)).to eq [1] }

      doomed.kill!
      bayeux_client.handshake!.publish("/news#{room}", { "n" => 1 })
      # The same clientId polls the surviving process: no new handshake.
      survivor = FayeOnlineSpec::BayeuxClient.new(server.url)
      survivor.instance_variable_set(:@client_id, tab.client_id)
      eventually do
        expect(survivor.connect).to include("successful" => true)
        expect(survivor.deliveries.map { |d| d["data"] }).to eq [{ "n" => 1 }]
      end
      # It stays online past the time the sweep would have ended a client
      # of a dead process (2 × timeout + 5 s), since it polls elsewhere.
      deadline = now + 11
      while now < deadline
        expect(survivor.connect).to include("successful" => true)
        let_time_pass(0.5)
      end
      expect(FayeOnline.online_users(room).map { |u| u["uid"] }).to eq [user["uid"]]
      expect(sql.log_entries(user["uid"]).map(&:first)).to eq [1]
      survivor.disconnect
      eventually { expect(sql.log_entries(user["uid"]).map(&:first)).to eq [1, 0] }
    ensure
      doomed&.stop
    end
  end
end
