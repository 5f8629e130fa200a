# frozen_string_literal: true

require "net/http"

# The dashboard served by the Faye server, in headless Chromium: it shows
# who is online where and whose timers run, and follows changes live
# through Faye, without reloading. A screenshot is kept in
# tmp/screenshots/ (the README's picture comes from it).
RSpec.describe "The dashboard", :integration do
  token = "dashboard-token-for-tests"
  on_each_deployment(server: { dashboard: token }) do |configuration|
    include_context "a browser"

    def dashboard_url(token)
      "#{server_url.sub(%r{/faye\z}, '')}/faye-online/dashboard?token=#{token}"
    end

    def get(path)
      Net::HTTP.get_response(URI("#{server_url.sub(%r{/faye\z}, '')}#{path}"))
    end

    it "shows rooms, users and running timers, and follows joins and leaves live" do
      rooms = [new_room, new_room]
      lesson = new_lesson
      names = %w[Ada Grace Alan Edsger Barbara]
      users = names.map { |name| new_user(name) }
      clients = users.each_with_index.map do |user, i|
        faye_client(auth: auth_for(user, room: rooms[i % 2], lesson: lesson)).tap(&:connect!)
      end
      # Ada has a second tab.
      faye_client(auth: auth_for(users[0], room: rooms[0], lesson: lesson)).connect!
      eventually { expect(FayeOnline.online_users(rooms[0]).size).to eq 3 }

      @browser.open("dashboard", user: "teacher", url: dashboard_url(token))
      chips = ->(room) { "Array.from(document.querySelectorAll('[data-room=\"#{room}\"] .chip')).map(function (c) { return c.firstChild.textContent; })" }
      eventually(timeout: 10) { expect(@browser.eval("dashboard", chips.call(rooms[0]))).to eq %w[Ada Alan Barbara] }
      expect(@browser.eval("dashboard", chips.call(rooms[1]))).to eq %w[Grace Edsger]
      expect(@browser.eval("dashboard", "document.getElementById('online').textContent")).to eq "5"
      expect(@browser.eval("dashboard", "document.querySelector('[data-room=\"#{rooms[0]}\"] .chip small').textContent")).to eq "2 tabs"
      eventually { expect(@browser.eval("dashboard", "document.getElementById('state').textContent")).to eq "live" }
      loads = @browser.eval("dashboard", "window.dashboard.loads")

      # Timers count on the page by themselves.
      timer = "document.querySelector('#lessons tr[data-uid=\"#{users[1]['uid']}\"] .timer').textContent"
      first = @browser.eval("dashboard", timer)
      eventually(timeout: 3) { expect(@browser.eval("dashboard", timer)).not_to eq first }

      # A join and a leave arrive through Faye, without reloading the page.
      @browser.eval("dashboard", "window.marker = 42")
      newcomer = new_user("Margaret")
      faye_client(auth: auth_for(newcomer, room: rooms[1], lesson: lesson)).connect!
      eventually { expect(@browser.eval("dashboard", chips.call(rooms[1]))).to eq %w[Grace Edsger Margaret] }
      clients[1].disconnect
      eventually { expect(@browser.eval("dashboard", chips.call(rooms[1]))).to eq %w[Edsger Margaret] }
      expect(@browser.eval("dashboard", "window.marker")).to eq 42
      expect(@browser.eval("dashboard", "window.dashboard.loads")).to be > loads
      expect(@browser.eval("dashboard", "window.dashboard.errors")).to eq []
      expect(@browser.eval("dashboard", "Number(document.getElementById('chart').dataset.points)")).to be >= 1

      path = FayeOnlineSpec.tmp_path("screenshots", "dashboard-#{configuration.name.gsub(/\W+/, '-').downcase}.png")
      @browser.screenshot("dashboard", path, width: 1100, height: 640)
      expect(File.size(path)).to be > 10_000
    end

    it "shows each student's state, attended and engaged time while a lesson runs, and statuses once it ended" do
      room = new_room
      lesson = new_lesson
      starts = Time.now - 1
      FayeOnline.schedule(lesson, starts_at: starts, ends_at: starts + 4)
      ann = new_user("Ann")
      bob = new_user("Bob")
      ann_tab = join(ann, room: room, lesson: lesson)
      bob_tab = join(bob, room: room, lesson: lesson)
      ann_tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => "active")
      bob_tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => "hidden")

      @browser.open("dashboard", user: "teacher", url: dashboard_url(token))
      cell = ->(uid, css) { "(document.querySelector('#lessons tr[data-uid=\"#{uid}\"] #{css}') || {}).textContent" }
      eventually(timeout: 10) do
        expect(@browser.eval("dashboard", cell.call(ann["uid"], ".page-state"))).to eq "active"
        expect(@browser.eval("dashboard", cell.call(bob["uid"], ".page-state"))).to eq "hidden"
      end
      # A change of state arrives live.
      bob_tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => "idle")
      eventually { expect(@browser.eval("dashboard", cell.call(bob["uid"], ".page-state"))).to eq "idle" }
      expect(@browser.eval("dashboard", cell.call(ann["uid"], ".attended"))).to match(/\A0:0\d\z/)

      # Once the window ended, the next change shows the finished lesson.
      eventually(timeout: 6) { expect(FayeOnline.attendance(lesson)["running"]).to be false }
      expect(ann_tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => "idle")).to include("successful" => true)
      statuses = "Array.from(document.querySelectorAll('#finished tr[data-uid]')).map(function (r) { " \
                 "return [r.cells[0].textContent, r.cells[1].textContent]; })"
      eventually do
        expect(@browser.eval("dashboard", statuses)).to eq [%w[Ann present], %w[Bob present]]
      end
      expect(@browser.eval("dashboard", "document.querySelector('#finished .thresholds').textContent"))
        .to eq "late after 300 s, early by 300 s, absent below 50 % attended"
      expect(@browser.eval("dashboard", "window.dashboard.errors")).to eq []
      [ann_tab, bob_tab].each { |tab| leave(tab) }
    end

    it "refuses a wrong or missing token, for the page, the data and the channel" do
      expect(get("/faye-online/dashboard").code).to eq "403"
      expect(get("/faye-online/dashboard?token=wrong").code).to eq "403"
      expect(get("/faye-online/dashboard.json?token=wrong").code).to eq "403"
      expect(get("/faye-online/dashboard.json?token=#{token}").code).to eq "200"
      tab = bayeux_client.handshake!
      reply = tab.subscribe("/faye_online/dashboard")
      expect(reply).to include("successful" => false)
      expect(reply["error"]).to start_with("403:/faye_online/dashboard:")
      reply = tab.publish("/faye_online/dashboard", "room" => "/x")
      expect(reply["error"]).to start_with("403:/faye_online/dashboard:")
    end
  end
end
