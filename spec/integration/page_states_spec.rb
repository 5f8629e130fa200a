# frozen_string_literal: true

# Engaged time: pages report their state (active, idle, hidden) on
# /faye-online/state; the server keeps it per clientId, writes the ledger's
# attended and engaged intervals, and publishes the user's state on the
# room's user_changes. Raw Bayeux over HTTP, on each configuration.
RSpec.describe "Page states and the interval ledger", :integration do
  on_each_deployment do |configuration|
    let(:room) { new_room }
    let(:lesson) { new_lesson }
    let(:state_channel) { FayeOnline::PAGE_STATE_CHANNEL }

    def report(tab, state)
      reply = tab.publish(state_channel, "state" => state)
      expect(reply).to include("successful" => true), "state #{state} refused: #{reply.inspect}"
    end

    def intervals(user)
      FayeOnline.intervals(lesson, user: user["uid"]).map do |i|
        [i["client_id"], i["measure"], i["ended_by"]]
      end
    end

    it "credits engaged time once over a user's tabs, ends it when a page goes idle, hidden or away, " \
       "and tells the room's user_changes of the user's state" do
      ann = new_user("ann")
      watcher = faye_client.subscribe("#{room}/user_changes")
      tab1 = join(ann, room: room, lesson: lesson)
      tab2 = join(ann, room: room, lesson: lesson)
      started = now
      report(tab1, "active")
      report(tab2, "active")
      eventually do
        states = watcher.messages("#{room}/user_changes").filter_map { |m| m["state"] }
        expect(states).to eq [[{ "uid" => ann["uid"], "uname" => "ann", "state" => "active" }]]
      end
      report(tab2, "hidden")
      report(tab1, "idle")
      idle_at = now
      eventually do
        states = watcher.messages("#{room}/user_changes").filter_map { |m| m["state"]&.first&.fetch("state") }
        expect(states).to eq %w[active idle]
      end
      eventually { expect(intervals(ann)).to contain_exactly([tab1.client_id, "engaged", "idle"], [tab2.client_id, "engaged", "hidden"]) }
      report(tab1, "active")
      leave(tab1)
      leave(tab2)
      left_at = now
      eventually do
        expect(intervals(ann)).to contain_exactly(
          [tab1.client_id, "engaged", "idle"], [tab2.client_id, "engaged", "hidden"],
          [tab1.client_id, "engaged", "left"],
          [tab1.client_id, "attended", "left"], [tab2.client_id, "attended", "left"]
        )
      end
      time = FayeOnline.lesson_time(ann["uid"], lesson)
      expect(time["attended_ms"]).to be_within(300).of(((left_at - started) * 1000).round)
      expect(time["engaged_ms"]).to be < time["attended_ms"]
      expect(time["engaged_ms"]).to be >= ((idle_at - started) * 1000).round - 300
      # The ledger is to the millisecond, and each row's times are in order.
      FayeOnline.intervals(lesson).each do |row|
        expect(row["ended_ms"]).to be >= row["started_ms"]
        expect(row["started_ms"]).to be > 1_600_000_000_000
      end
    end

    it "refuses bad page states with a Bayeux error, stores nothing, delivers them to nobody, and keeps serving" do
      ann = new_user("ann")
      spy = faye_client.subscribe("/**")
      anon = bayeux_client.handshake!
      tab = join(ann, room: room, lesson: lesson)
      [nil, "", "ACTIVE", "away", 5, ["active"], { "x" => 1 }, "a" * 5000].each do |bad|
        reply = tab.publish(state_channel, "state" => bad)
        expect(reply).to include("successful" => false), bad.inspect
        expect(reply["error"]).to start_with("400:data.state:")
      end
      expect(tab.publish(state_channel, "nope").fetch("error")).to start_with("400:")
      expect(anon.publish(state_channel, "state" => "active").fetch("error")).to start_with("403:clientId:")
      made_up = FayeOnlineSpec::BayeuxClient.new(server_url)
      made_up.instance_variable_set(:@client_id, "madeup0123456789")
      expect(made_up.publish(state_channel, "state" => "active")["successful"]).to be(configuration.redis?)
      expect(tab.subscribe(state_channel)["error"]).to start_with("403:")
      report(tab, "active")
      # A flood: the first ten pass, then one each half second.
      answers = Array.new(20) { |k| tab.publish(state_channel, "state" => k.even? ? "idle" : "active") }
      refused = answers.reject { |a| a["successful"] }
      expect(refused).not_to be_empty
      expect(refused.first["error"]).to start_with("503:")
      leave(tab)
      eventually { expect(FayeOnline.intervals(lesson).map { |i| i["client_id"] }.uniq).to eq [tab.client_id] }
      consistently(duration: 0.5) do
        expect(spy.messages(state_channel)).to be_empty
      end
      expect(join(new_user, room: room, lesson: lesson).publish(state_channel, "state" => "hidden"))
        .to include("successful" => true)
    end
  end
end
