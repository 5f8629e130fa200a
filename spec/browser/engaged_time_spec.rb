# frozen_string_literal: true

# Engaged time in a real headless Chromium: the room page
# (spec/fixtures/browser/room.html) runs faye-online.js with idle_after at
# 1 s; left untouched it goes idle, a click makes it active again, and the
# server's ledger agrees with what the page saw, within a second.
RSpec.describe "Engaged time, in a real browser", :browser, :integration do
  on_each_deployment do
    include_context "a browser"

    let(:room) { new_room }
    let(:lesson) { new_lesson }

    def states(name)
      probe(name)["states"].map(&:first)
    end

    # The user's intervals in the ledger: [measure, ended_by] pairs.
    def ledger(user)
      FayeOnline.intervals(lesson, user: user["uid"]).map { |i| i.values_at("measure", "ended_by") }
    end

    def server_states(watcher)
      watcher.messages("#{room}/user_changes").filter_map { |m| m["state"]&.first&.fetch("state") }
    end

    def epoch_ms
      (Time.now.to_r * 1000).round
    end

    it "stops engaged time within a second when a tab goes behind another, counts two tabs once, " \
       "and keeps attended time running" do
      ann = new_user("ann")
      watcher = faye_client.subscribe("#{room}/user_changes")
      first = open_tab("ann-1", ann, idle_after: 60)
      eventually(timeout: 5) { expect(states("ann-1")).to eq %w[active] }
      eventually { expect(server_states(watcher)).to eq %w[active] }

      # A second tab of the same window comes to the front: the first goes
      # behind it. The user is still active, once.
      second = open_tab("ann-2", ann, idle_after: 60)
      @browser.front("ann-2")
      @browser.real_visibility("ann-2")
      eventually(timeout: 5) { expect(probe("ann-2")["state_acks"]).to be >= 1 }
      hidden_at = epoch_ms
      @browser.real_visibility("ann-1")
      eventually(timeout: 5) { expect(states("ann-1")).to eq %w[active hidden] }
      eventually(timeout: 5) { expect(states("ann-2")).to eq %w[active] }
      eventually do
        rows = FayeOnline.intervals(lesson, user: ann["uid"]).map { |i| i.values_at("client_id", "measure", "ended_by") }
        expect(rows).to eq [[first, "engaged", "hidden"]]
      end
      ended = FayeOnline.intervals(lesson, user: ann["uid"]).first["ended_ms"]
      expect(ended - hidden_at).to be_between(0, 1000)
      consistently(duration: 0.5) { expect(server_states(watcher)).to eq %w[active] }

      # The first comes back to the front; the second goes behind it.
      @browser.front("ann-1")
      eventually(timeout: 5) { expect(states("ann-1")).to eq %w[active hidden active] }
      eventually(timeout: 5) { expect(states("ann-2")).to eq %w[active hidden] }
      # The whole window minimized: both hidden, and so is the user.
      @browser.minimize("ann-1")
      eventually(timeout: 5) { expect(states("ann-1").last).to eq "hidden" }
      eventually { expect(server_states(watcher)).to eq %w[active hidden] }
      @browser.minimize("ann-1", minimized: false)
      eventually(timeout: 5) { expect(states("ann-1").last).to eq "active" }
      eventually { expect(server_states(watcher)).to eq %w[active hidden active] }

      # Ground truth: the union of the pages' own active stretches.
      marks = %w[ann-1 ann-2].map { |tab| probe(tab)["states"] }
      @browser.close("ann-1", confirm: true)
      @browser.close("ann-2", confirm: true)
      closed = epoch_ms
      eventually(timeout: 5) do
        expect(FayeOnline.intervals(lesson, user: ann["uid"]).count { |i| i["measure"] == "attended" }).to eq 2
      end
      spans = marks.flat_map do |states|
        states.each_with_index.filter_map do |(state, at), i|
          [at, states[i + 1]&.last || closed] if state == "active"
        end
      end
      truth = spans.sort.each_with_object([]) do |(a, b), out|
        out.any? && a <= out.last[1] ? out.last[1] = [out.last[1], b].max : out << [a, b]
      end.sum { |a, b| b - a }
      time = FayeOnline.lesson_time(ann["uid"], lesson)
      expect(time["engaged_ms"]).to be_within(1000).of(truth)
      expect(time["attended_ms"]).to be_within(1000).of(closed - marks[0][0][1])
      expect(time["engaged_ms"]).to be < time["attended_ms"]
      expect(second).not_to eq first
    end

    it "stays active while a video plays, with no input, and goes idle when it stops" do
      ann = new_user("ann")
      open_tab("ann-video", ann, idle_after: 1, video: 1)
      eventually(timeout: 5) { expect(@browser.eval("ann-video", "lessonVideo.readyState")).to be > 2 }
      consistently(duration: 2.5) { expect(states("ann-video")).to eq %w[active] }
      @browser.eval("ann-video", "lessonVideo.pause(), true")
      eventually(timeout: 3) { expect(states("ann-video")).to eq %w[active idle] }
      eventually { expect(ledger(ann)).to eq [%w[engaged idle]] }
    end

    it "asks \"still there?\" after confirm_after of idleness, and an answer makes the page active again" do
      ann = new_user("ann")
      open_tab("ann-asked", ann, idle_after: 1, confirm_after: 1)
      eventually(timeout: 5) { expect(states("ann-asked")).to eq %w[active idle] }
      asked = eventually(timeout: 5) { probe("ann-asked")["still_there"].tap { |a| expect(a.size).to eq 1 } }
      expect(asked.first).to be >= 1900
      consistently(duration: 1) { expect(probe("ann-asked")["still_there"].size).to eq 1 }
      # The page's "yes" (a button calling faye_online_active) counts as input.
      @browser.eval("ann-asked", "faye.faye_online_active(), true")
      eventually(timeout: 3) { expect(states("ann-asked")).to eq %w[active idle active] }
      eventually { expect(ledger(ann)).to eq [%w[engaged idle]] }
    end

    it "goes idle without input, is active again on input, and credits only the active time" do
      ann = new_user("ann")
      watcher = faye_client.subscribe("#{room}/user_changes")
      client_id = open_tab("ann-engaged", ann, idle_after: 1)
      eventually(timeout: 5) { expect(states("ann-engaged")).to eq %w[active idle] }
      eventually do
        seen = watcher.messages("#{room}/user_changes").filter_map { |m| m["state"]&.first&.fetch("state") }
        expect(seen).to eq %w[active idle]
      end
      @browser.touch("ann-engaged")
      eventually(timeout: 5) { expect(states("ann-engaged")).to eq %w[active idle active] }
      eventually do
        seen = watcher.messages("#{room}/user_changes").filter_map { |m| m["state"]&.first&.fetch("state") }
        expect(seen).to eq %w[active idle active]
      end
      # Ground truth from the page's own clock: active until idle, then
      # from the click until the close.
      marks = probe("ann-engaged")["states"].map(&:last)
      expect(@browser.close("ann-engaged", confirm: true)).to include("closed" => true)
      closed_ms = (Time.now.to_f * 1000).round
      eventually(timeout: 5) do
        rows = ledger(ann)
        # A closing page is hidden first (visibilitychange before pagehide):
        # its "hidden" and its leave race to the server; either ends it.
        expect(rows).to contain_exactly(%w[attended closed], %w[engaged idle], ["engaged", a_string_matching(/\A(hidden|closed)\z/)])
      end
      expected_engaged = (marks[1] - marks[0]) + (closed_ms - marks[2])
      time = FayeOnline.lesson_time(ann["uid"], lesson)
      expect(time["engaged_ms"]).to be_within(1000).of(expected_engaged)
      expect(time["attended_ms"]).to be_within(1000).of(closed_ms - marks[0])
      expect(FayeOnline.intervals(lesson).map { |i| i["client_id"] }.uniq).to eq [client_id]
    end
  end
end
