# frozen_string_literal: true

# Leaving, as people do it, in a real headless Chromium: pages of a school site
# (spec/fixtures/browser/room.html) load Faye's browser client and
# faye-online.js from the Faye server and join with Faye.init_online_client;
# the server runs on each configuration (Redis + MariaDB, and the embedded
# default) with Faye's timeout at 2 s and a 1 s sweep, so a vanished client
# is noticed within 2 * 2 + 1 s of its last poll.
faye_timeout = 2
gc_interval = 1
# Faye ends a silent client's session 2 * timeout after its last poll; the
# sweep and the writer take up to another gc interval and a little.
sweep_bound = (2 * faye_timeout) + gc_interval + 1

RSpec.describe "Leaving, in a real browser", :browser, :integration do
  on_each_deployment(server: { timeout: faye_timeout, gc: gc_interval }) do
    include_context "a browser"

    let(:room) { new_room }
    let(:lesson) { new_lesson }

    def running?(uid)
      online_times(uid).key?(started_key(lesson))
    end

    it "counts a user with two tabs once, keeps them online while one tab is left, " \
       "and takes them offline within 5 s of closing the last, with the time recorded" do
      ann = new_user("ann")
      bob = new_user("bob")
      uid = ann["uid"]

      first_joined = now
      tab1 = open_tab("ann-1", ann)
      tab2 = open_tab("ann-2", ann)
      open_tab("bob", bob)
      expect(tab1).not_to eq tab2

      eventually { expect(last_list("bob")).to include("count" => 2, "user_list" => match_array([uid, bob["uid"]])) }
      eventually { expect(online_uids(room)).to match_array([uid, bob["uid"]]) }
      eventually { expect(sql.log_entries(uid)).to contain_exactly([1, tab1], [1, tab2]) }
      expect(running?(uid)).to be true

      expect(@browser.close("ann-1", confirm: true)).to include("closed" => true)
      eventually { expect(sql.log_entries(uid)).to include([0, tab1]) }
      consistently(duration: 1.0) do
        expect(online_uids(room)).to include(uid)
        expect(last_list("bob")["user_list"]).to include(uid)
        expect(running?(uid)).to be true
        expect(sql.log_entries(uid)).not_to include([0, tab2])
      end

      closed = now
      expect(@browser.close("ann-2", confirm: true)).to include("closed" => true)
      eventually(timeout: 5) do
        expect(last_list("bob")).to include("count" => 1, "user_list" => [bob["uid"]])
        expect(last_list("bob")["left"]).to eq [ann]
      end
      offline_after = now - closed
      eventually { expect(online_uids(room)).to eq [bob["uid"]] }
      eventually { expect(sql.log_entries(uid)).to contain_exactly([1, tab1], [1, tab2], [0, tab1], [0, tab2]) }
      eventually { expect(running?(uid)).to be false }
      expect(offline_after).to be < 5
      expect(online_times(uid)[spended_key(lesson)]).to be_within(1.5).of(closed - first_joined)
      expect(FayeOnline.online_users(room)).to eq [bob]
    end

    it "keeps a page online when the user starts to close it and cancels" do
      ann = new_user("ann")
      uid = ann["uid"]
      client_id = open_tab("ann-guarded", ann, guard: 1)
      eventually { expect(sql.log_entries(uid)).to eq [[1, client_id]] }
      @browser.touch("ann-guarded")

      answer = @browser.close("ann-guarded", confirm: false)
      expect(answer).to include("asked" => true, "closed" => false, "alive" => true)

      # Longer than a vanished client would take to be noticed.
      consistently(duration: sweep_bound + 1) do
        expect(sql.log_entries(uid)).to eq [[1, client_id]]
        expect(online_uids(room)).to eq [uid]
        expect(running?(uid)).to be true
      end
      # Its client still polls: it hears of the next user to come.
      carl = new_user("carl")
      faye_client(auth: auth_for(carl, room: room, lesson: lesson)).connect!
      eventually { expect(last_list("ann-guarded")).to include("count" => 2, "joined" => [carl]) }
      expect(probe("ann-guarded")["client_ids"]).to eq [client_id]
    end

    it "leaves when the page navigates away and joins again when it is restored from the back/forward cache" do
      ann = new_user("ann")
      uid = ann["uid"]
      # Faye's browser client listens to `unload`, which keeps a page out of the
      # back/forward cache unless the page forbids unload listeners.
      first = open_tab("ann-cached", ann, no_unload: 1)

      seen_before = probe("ann-cached")["lists"].size
      left = now
      @browser.goto("ann-cached", @browser.page_url("elsewhere.html"))
      eventually(timeout: 5) { expect(sql.log_entries(uid)).to eq [[1, first], [0, first]] }
      expect(now - left).to be < 5
      eventually { expect(online_uids(room)).to eq [] }

      @browser.back("ann-cached")
      eventually(timeout: 10) { expect(probe("ann-cached")["shows"]).to eq [false, true] }
      second = wait_for(timeout: 10) { probe("ann-cached")["client_ids"][1] }
      expect(second).not_to eq first
      eventually { expect(sql.log_entries(uid)).to contain_exactly([1, first], [0, first], [1, second]) }
      eventually { expect(online_uids(room)).to eq [uid] }
      eventually { expect(running?(uid)).to be true }

      # The restored page is subscribed again: it gets the current list, then
      # hears of the next user to come.
      eventually do
        expect(probe("ann-cached")["lists"].drop(seen_before)).to include(include("count" => 1, "user_list" => [uid]))
      end
      dan = new_user("dan")
      faye_client(auth: auth_for(dan, room: room, lesson: lesson)).connect!
      eventually { expect(last_list("ann-cached")).to include("count" => 2, "joined" => [dan]) }
    end

    it "joins again as a new page when the page comes back without the back/forward cache" do
      ann = new_user("ann")
      uid = ann["uid"]
      first = open_tab("ann-reloaded", ann)

      @browser.goto("ann-reloaded", @browser.page_url("elsewhere.html"))
      eventually(timeout: 5) { expect(sql.log_entries(uid)).to eq [[1, first], [0, first]] }

      @browser.back("ann-reloaded")
      second = wait_for(timeout: 10) { (probe("ann-reloaded")["client_ids"].last rescue nil) }
      expect(second).not_to eq first
      expect(probe("ann-reloaded")["shows"]).to eq [false]
      eventually { expect(sql.log_entries(uid)).to contain_exactly([1, first], [0, first], [1, second]) }
      eventually { expect(online_uids(room)).to eq [uid] }
    end

    it "takes the user of a killed browser offline within the sweep bound, ending their time at its last poll" do
      doomed = FayeOnlineSpec::Browser.start
      begin
        ann = new_user("ann")
        bob = new_user("bob")
        uid = ann["uid"]
        client_id = open_tab("ann-doomed", ann, browser: doomed)
        open_tab("bob-watching", bob)
        eventually { expect(sql.log_entries(uid)).to eq [[1, client_id]] }
        let_time_pass(3)

        # Kill it half way between two polls (it sends one every Faye timeout
        # while nothing happens), so that the page's record of when it sent
        # each /meta/connect (its clock is this machine's) is complete.
        sent = doomed.eval("ann-doomed", "probe.connects.length")
        wait_for(timeout: faye_timeout + 1) { doomed.eval("ann-doomed", "probe.connects.length") > sent }
        let_time_pass(faye_timeout / 2.0)
        polls = doomed.eval("ann-doomed", "probe.connects")
        doomed.kill!
        killed = now
        killed_at_ms = (Time.now.to_f * 1000).round
        eventually(timeout: sweep_bound + 2) { expect(sql.log_entries(uid)).to eq [[1, client_id], [0, client_id]] }
        noticed = now - killed
        eventually { expect(last_list("bob-watching")).to include("count" => 1, "left" => [ann]) }
        eventually { expect(online_uids(room)).to eq [bob["uid"]] }
        eventually { expect(running?(uid)).to be false }
        expect(noticed).to be <= sweep_bound

        # Its time ends at its last poll (within the second that SQL rounds
        # to), not at the kill and not when the server noticed it gone.
        since_last_poll = (killed_at_ms - polls.last) / 1000.0
        expect(since_last_poll).to be_between(0.5 * faye_timeout, faye_timeout)
        credited = online_times(uid)[spended_key(lesson)]
        polled_for = (polls.last - polls.first) / 1000.0
        expect(credited).to be_within(1).of(polled_for),
          "credited #{credited}s; polled for #{polled_for}s until #{since_last_poll}s before the kill, " \
          "noticed gone #{noticed.round(2)}s after it"
      ensure
        doomed.quit
      end
    end

    it "checks its options and names the wrong one" do
      @browser.open("options", user: "nobody", url: @browser.page_url("elsewhere.html"))
      base = "#{URI(server_url).then { |u| "http://#{u.host}:#{u.port}" }}/faye-online/"
      errors = @browser.eval("options", <<~JS)
        (async () => {
          const load = (src) => new Promise((resolve, reject) => {
            const s = document.createElement("script");
            s.src = src; s.onload = resolve; s.onerror = reject; document.head.appendChild(s);
          });
          await load(#{JSON.generate("#{base}faye-browser-min.js")});
          await load(#{JSON.generate("#{base}faye-online.js")});
          const good = { room_channel: "/classes/4", time_channel: "/courses/5/lessons/1",
                         current_user: { uid: 1, uname: "ann" } };
          const tries = [
            undefined,
            { auth_opts: good },
            { faye_url: #{JSON.generate(server_url)} },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: Object.assign({}, good, { room_channel: "/classes/*" }) },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: Object.assign({}, good, { time_channel: "/meta/connect" }) },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: Object.assign({}, good, { current_user: null }) },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: Object.assign({}, good, { current_user: { uid: "1", uname: "ann" } }) },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: Object.assign({}, good, { current_user: { uid: 1, uname: " " } }) },
            { faye_url: #{JSON.generate(server_url)}, auth_opts: good, client_opts: 5 },
          ];
          return tries.map((options) => {
            try { Faye.init_online_client(options); return "accepted"; } catch (e) { return e.message; }
          });
        })()
      JS
      expect(errors).to eq [
        "faye-online: init_online_client needs an options object",
        "faye-online: faye_url must be the server's URL, e.g. http://localhost:9292/faye",
        "faye-online: auth_opts must be an object with room_channel, time_channel and current_user",
        "faye-online: auth_opts.room_channel must be a channel name such as /classes/4 (letters, digits, _, - and single slashes)",
        "faye-online: auth_opts.time_channel must be a channel name such as /classes/4 (letters, digits, _, - and single slashes)",
        "faye-online: auth_opts.current_user must be an object with uid and uname",
        "faye-online: auth_opts.current_user.uid must be a positive integer",
        "faye-online: auth_opts.current_user.uname must be a non-empty string",
        "faye-online: client_opts must be an object"
      ]
    end
  end
end
