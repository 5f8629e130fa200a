# frozen_string_literal: true

require "csv"
require "tmpdir"

# FayeOnline.status, .log and .report: against a live server, and against a
# scripted login/logout log whose times are known to the second.
RSpec.describe "Reports", :integration do
  on_each_deployment do |configuration|
    it "shows who is online where, with their clientIds and running timers" do
      room = new_room
      lesson = new_lesson
      ann = new_user("ann")
      bob = new_user("bob")
      tabs = [join(ann, room: room, lesson: lesson), join(ann, room: room, lesson: lesson),
              join(bob, room: room, lesson: lesson)]
      eventually { expect(online_uids(room)).to eq [ann["uid"], bob["uid"]].sort }
      eventually { expect(sql.login_logs(bob["uid"]).size).to eq 1 }

      status = FayeOnline.status
      listed = status["rooms"].find { |r| r["room"] == room }
      expect(listed).to include("count" => 2)
      expect(listed["users"].map { |u| u.slice("uid", "uname") }).to eq [ann, bob].sort_by { |u| u["uid"] }
      timers = status["lessons"].find { |l| l["lesson"] == lesson }
      expect(timers["users"].map { |u| u["uid"] }).to eq [ann["uid"], bob["uid"]].sort
      ann_timer = timers["users"].find { |u| u["uid"] == ann["uid"] }
      expect(ann_timer["client_ids"]).to match_array(tabs.first(2).map(&:client_id))
      expect(ann_timer["started_at"]).to be_within(5).of(Time.now)
      if configuration.redis?
        # From Redis: the rooms too know each clientId.
        expect(listed["users"].find { |u| u["uid"] == bob["uid"] }["client_ids"]).to eq [tabs[2].client_id]
      end

      tabs.each { |tab| leave(tab) }
      eventually { expect(FayeOnline.status["rooms"].map { |r| r["room"] }).not_to include(room) }
      eventually { expect(sql.login_logs(ann["uid"]).size).to eq 4 }
      log = FayeOnline.log(user: ann["uid"])
      expect(log["sessions"].map { |s| s["client_id"] }).to match_array(tabs.first(2).map(&:client_id))
      expect(log["sessions"]).to all(include("lesson" => lesson, "open" => false))
    end

    context "with a scripted log" do
      let(:day) { "2026-01-05" }
      let(:lesson) { new_lesson }
      let(:other_lesson) { new_lesson }
      let(:ann) { new_user("ann") }
      let(:bob) { new_user("bob") }

      def at(hhmmss)
        Time.utc(2026, 1, 5, *hhmmss.split(":").map(&:to_i))
      end

      def channel(name)
        sql.rows("INSERT INTO faye_channels (name, created_at, updated_at) VALUES (?, ?, ?)",
                 name, "#{day} 00:00:00", "#{day} 00:00:00")
        sql.channel_id(name)
      end

      def log_row(status, user, lesson_id, time, client_id)
        sql.rows("INSERT INTO faye_user_login_logs (status, uid, t, channel_id, clientId) VALUES (?, ?, ?, ?, ?)",
                 status, user["uid"], "#{day} #{time}", lesson_id, client_id)
      end

      before do
        sql.truncate_all!
        ids = { lesson => channel(lesson), other_lesson => channel(other_lesson) }
        [ann, bob].each do |user|
          sql.rows("INSERT INTO faye_online_user_names (uid, uname, created_at, updated_at) VALUES (?, ?, ?, ?)",
                   user["uid"], user["uname"], "#{day} 00:00:00", "#{day} 00:00:00")
        end
        # ann: two overlapping tabs in the lesson (10:00–10:30, 10:20–10:50),
        # and five minutes in another lesson.
        log_row(1, ann, ids[lesson], "10:00:00", "a1")
        log_row(1, ann, ids[other_lesson], "10:00:00", "a3")
        log_row(0, ann, ids[other_lesson], "10:05:00", "a3")
        log_row(1, ann, ids[lesson], "10:20:00", "a2")
        log_row(0, ann, ids[lesson], "10:30:00", "a1")
        log_row(0, ann, ids[lesson], "10:50:00", "a2")
        # bob: 10:10–10:15, then a tab from 11:00 with no logout (still open).
        log_row(1, bob, ids[lesson], "10:10:00", "b1")
        log_row(0, bob, ids[lesson], "10:15:00", "b1")
        log_row(1, bob, ids[lesson], "11:00:00", "b2")
        # ann's pages were active 10:05–10:25 and 10:20–10:40 (the ledger).
        [["a1", "10:05:00", "10:25:00"], ["a2", "10:20:00", "10:40:00"]].each do |client_id, from, to|
          sql.rows("INSERT INTO faye_online_intervals (uid, lesson, client_id, kind, started_ms, ended_ms, ended_by) " \
                   "VALUES (?, ?, ?, ?, ?, ?, ?)", ann["uid"], lesson, client_id, "engaged",
                   (at(from).to_r * 1000).round, (at(to).to_r * 1000).round, "idle")
        end
      end

      it "merges overlapping sessions per lesson in a user's log" do
        log = FayeOnline.log(user: ann["uid"], to: at("12:00:00"))
        expect(log["uname"]).to eq "ann"
        expect(log["sessions"].map { |s| [s["client_id"], s["seconds"]] })
          .to eq [["a1", 1800], ["a3", 300], ["a2", 1800]]
        expect(log["lessons"][lesson]).to eq("seconds" => 3000, "first_join" => at("10:00:00"),
                                             "last_leave" => at("10:50:00"), "engaged_seconds" => 2100)
        expect(FayeOnline.lesson_time(ann["uid"], lesson, from: at("10:12:00"), to: at("10:30:00")))
          .to eq("attended_ms" => 0, "engaged_ms" => 18 * 60_000)
        expect(log["lessons"][other_lesson]["seconds"]).to eq 300
      end

      it "writes CSV per lesson and per user within a date range" do
        Dir.mktmpdir do |dir|
          by_lesson, by_user = FayeOnline.report(dir: dir, from: at("10:12:00"), to: at("11:30:00"))
          expect(CSV.read(by_lesson)).to eq [
            %w[lesson uid uname seconds first_join last_leave engaged_seconds],
            [lesson, ann["uid"].to_s, "ann", "2280", "#{day}T10:00:00Z", "#{day}T10:50:00Z", "1680"],
            [lesson, bob["uid"].to_s, "bob", "1980", "#{day}T10:10:00Z", nil, "0"]
          ]
          expect(CSV.read(by_user)).to eq [
            %w[uid uname lesson seconds first_join last_leave engaged_seconds],
            [ann["uid"].to_s, "ann", lesson, "2280", "#{day}T10:00:00Z", "#{day}T10:50:00Z", "1680"],
            [bob["uid"].to_s, "bob", lesson, "1980", "#{day}T10:10:00Z", nil, "0"]
          ]
        end
      end

      it "refuses a range that ends before it starts" do
        expect { FayeOnline.report(dir: Dir.tmpdir, from: at("11:00:00"), to: at("10:00:00")) }
          .to raise_error(ArgumentError, /before/)
      end
    end
  end
end
