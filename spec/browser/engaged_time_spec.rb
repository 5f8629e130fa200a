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
        rows = FayeOnline.intervals(lesson, user: ann["uid"]).map { |i| [i["measure"], i["ended_by"]] }
        # A closing page is hidden first (visibilitychange before pagehide).
        expect(rows).to contain_exactly(%w[attended closed], %w[engaged idle], %w[engaged hidden])
      end
      expected_engaged = (marks[1] - marks[0]) + (closed_ms - marks[2])
      time = FayeOnline.lesson_time(ann["uid"], lesson)
      expect(time["engaged_ms"]).to be_within(1000).of(expected_engaged)
      expect(time["attended_ms"]).to be_within(1000).of(closed_ms - marks[0])
      expect(FayeOnline.intervals(lesson).map { |i| i["client_id"] }.uniq).to eq [client_id]
    end
  end
end
