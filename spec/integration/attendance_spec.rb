# frozen_string_literal: true

require "csv"
require "tmpdir"

# Lessons' windows and attendance: against a scripted interval ledger whose
# times are known to the millisecond (the same rows on SQLite, MariaDB and
# PostgreSQL must give the same figures), and against a live lesson.
RSpec.describe "Lessons and attendance", :integration do
  on_each_deployment do |configuration|
    let(:lesson) { new_lesson }
    let(:ann) { new_user("ann") }
    let(:bob) { new_user("bob") }
    let(:cy) { new_user("cy") }
    let(:dee) { new_user("dee") }
    let(:eve) { new_user("eve") }
    let(:fay) { new_user("fay") }
    let(:gus) { new_user("gus") }

    def ms(hhmmss)
      (Time.utc(2026, 1, 5, *hhmmss.split(":").map(&:to_i)).to_r * 1000).round
    end

    def interval(user, tab, measure, from, to, ended_by)
      client_id = "#{tab}#{user['uid']}"
      sql.rows("INSERT INTO faye_online_intervals (uid, lesson, client_id, kind, started_ms, ended_ms, ended_by) " \
               "VALUES (?, ?, ?, ?, ?, ?, ?)", user["uid"], lesson, client_id, measure, ms(from), ms(to), ended_by)
    end

    context "with a scripted ledger" do
      before do
        [ann, bob, cy, dee, fay, gus].each do |user|
          sql.rows("INSERT INTO faye_online_user_names (uid, uname, created_at, updated_at) VALUES (?, ?, ?, ?)",
                   user["uid"], user["uname"], "2026-01-05 00:00:00", "2026-01-05 00:00:00")
        end
        # 10:00 to 11:00 UTC, given in Paris time.
        FayeOnline.schedule(lesson, starts_at: "2026-01-05 11:00", ends_at: "2026-01-05 12:00", time_zone: "Europe/Paris")
        # Ann: two tabs overlapping, from before the start to after the end.
        interval(ann, "ann1", "attended", "09:58:00", "10:30:00", "closed")
        interval(ann, "ann2", "attended", "10:20:00", "11:02:00", "left")
        interval(ann, "ann1", "engaged", "09:59:00", "10:15:00", "hidden")
        interval(ann, "ann2", "engaged", "10:10:00", "10:45:00", "idle")
        interval(bob, "bob1", "attended", "10:10:00", "11:00:00", "left")
        interval(cy, "cy1", "attended", "10:00:20", "10:40:00", "vanished")
        interval(dee, "dee1", "attended", "10:04:00", "10:24:00", "closed")
        # Fay looked in before the start, then came half an hour late; Gus
        # left at 10:40 and looked in again after the end.
        interval(fay, "fay1", "attended", "09:50:00", "09:51:00", "closed")
        interval(fay, "fay2", "attended", "10:30:00", "11:00:00", "left")
        interval(gus, "gus1", "attended", "10:00:00", "10:40:00", "closed")
        interval(gus, "gus2", "attended", "11:10:00", "11:20:00", "closed")
        # Another lesson's rows change nothing here.
        sql.rows("INSERT INTO faye_online_intervals (uid, lesson, client_id, kind, started_ms, ended_ms, ended_by) " \
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", ann["uid"], "#{lesson}0", "x#{ann['uid']}", "attended", ms("10:00:00"), ms("11:00:00"), "left")
      end

      it "gives every status, counting only the window's time, in the time zone asked" do
        result = FayeOnline.attendance(lesson, students: [eve["uid"]], time_zone: "Europe/Paris")
        expect(result).to include("starts_at" => "2026-01-05T11:00:00.000+01:00", "ends_at" => "2026-01-05T12:00:00.000+01:00",
                                   "time_zone" => "Europe/Paris", "running" => false,
                                   "thresholds" => { "late_after" => 300, "early_by" => 300, "min_attended" => 50 })
        by_uid = result["students"].to_h { |s| [s["uid"], s] }
        expect(by_uid.transform_values { |s| s["status"] }).to eq(
          ann["uid"] => "present", bob["uid"] => "late", cy["uid"] => "left_early", dee["uid"] => "absent",
          eve["uid"] => "absent", fay["uid"] => "late", gus["uid"] => "left_early"
        )
        # Judged inside the window; the times shown are the real ones.
        expect(by_uid[fay["uid"]]).to include("attended_percent" => 50.0, "first_join" => "2026-01-05T10:50:00.000+01:00")
        expect(by_uid[gus["uid"]]).to include("attended_percent" => 66.7, "left_early" => true,
                                              "last_leave" => "2026-01-05T12:20:00.000+01:00")
        # 10:00 to 11:00 (the tabs' union, clipped), engaged 10:00 to 10:45.
        expect(by_uid[ann["uid"]]).to include("attended_seconds" => 3600.0, "attended_percent" => 100.0,
                                              "engaged_seconds" => 2700.0, "engaged_percent" => 75.0,
                                              "first_join" => "2026-01-05T10:58:00.000+01:00",
                                              "last_leave" => "2026-01-05T12:02:00.000+01:00")
        expect(by_uid[cy["uid"]]).to include("attended_seconds" => 2380.0, "late" => false, "left_early" => true)
        expect(by_uid[dee["uid"]]).to include("attended_percent" => 33.3)
        expect(by_uid[eve["uid"]]).to include("attended_seconds" => 0.0, "first_join" => nil)
        expect(FayeOnline.lesson_time(ann["uid"], lesson)).to eq("attended_ms" => 64 * 60_000, "engaged_ms" => 46 * 60_000)
      end

      it "writes attendance.csv and attendance.json for the lessons scheduled in the range" do
        Dir.mktmpdir do |dir|
          paths = FayeOnline.report(dir: dir, from: "2026-01-05", to: "2026-01-06", time_zone: "Asia/Tokyo")
          # (Other examples' lessons may be scheduled that day too.)
          rows = CSV.read(File.join(dir, "attendance.csv"), headers: true).select { |r| r["lesson"] == lesson }
          expect(rows.map { |r| [r["uname"], r["status"]] })
            .to eq [%w[ann present], %w[bob late], %w[cy left_early], %w[dee absent], %w[fay late], %w[gus left_early]]
          expect(rows.first.to_h).to include("lesson" => lesson, "starts_at" => "2026-01-05T19:00:00.000+09:00",
                                             "late_after_seconds" => "300", "time_zone" => "Asia/Tokyo")
          expect(JSON.parse(File.read(paths.last))["lessons"].map { |l| l["lesson"] }).to include(lesson)
          FayeOnline.report(dir: dir, from: "2026-01-06", to: "2026-01-07")
          expect(CSV.read(File.join(dir, "attendance.csv")).size).to eq 1
        end
      end
    end

    # With Redis, the app reads the running intervals and states from it;
    # beside a server on process memory, it knows from SQL who is still
    # there (a login row without its logout), and engaged time once it ends.
    it "counts a running lesson, with each student's state where the store is shared" do
      room = new_room
      starts = Time.now - 0.5
      FayeOnline.schedule(lesson, starts_at: starts, ends_at: starts + 2.5)
      tab = join(ann, room: room, lesson: lesson)
      expect(tab.publish(FayeOnline::PAGE_STATE_CHANNEL, "state" => "active")).to include("successful" => true)
      eventually do
        student = FayeOnline.attendance(lesson)["students"].first
        expect(student).to include("uid" => ann["uid"], "uname" => "ann", "online" => true,
                                   "state" => configuration.redis? ? "active" : nil)
      end
      eventually(timeout: 5) do
        result = FayeOnline.attendance(lesson)
        expect(result["running"]).to be false
        student = result["students"].first
        expect(student).to include("status" => "present", "last_leave" => nil)
        expect(student["attended_percent"]).to be >= 75
        expect(student["engaged_percent"]).to be >= 70 if configuration.redis?
      end
      leave(tab)
      eventually do
        student = FayeOnline.attendance(lesson)["students"].first
        expect(student).to include("online" => false, "status" => "present")
        expect(student["engaged_percent"]).to be >= 70
      end
    end

    it "refuses bad schedules and lessons without one" do
      [["nope", Time.now, Time.now + 1], ["/meta/connect", Time.now, Time.now + 1], [lesson, Time.now, Time.now],
       [lesson, "yesterday-ish", Time.now], [lesson, Time.now, Object.new]].each do |channel, from, to|
        expect { FayeOnline.schedule(channel, starts_at: from, ends_at: to) }.to raise_error(ArgumentError), [channel, from, to].inspect
      end
      expect { FayeOnline.schedule(lesson, starts_at: "2026-01-05 10:00", ends_at: "2026-01-05 11:00", time_zone: "Nowhere") }
        .to raise_error(ArgumentError, /unknown time zone/)
      expect { FayeOnline.attendance(lesson) }.to raise_error(ArgumentError, /no schedule/)
      FayeOnline.schedule(lesson, starts_at: "2026-01-05T10:00:00Z", ends_at: "2026-01-05T11:00:00Z")
      FayeOnline.schedule(lesson, starts_at: "2026-01-05T10:30:00Z", ends_at: "2026-01-05T11:00:00Z")
      expect(FayeOnline.attendance(lesson)).to include("starts_at" => "2026-01-05T10:30:00.000Z", "students" => [])
    end
  end
end
