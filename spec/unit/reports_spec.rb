# frozen_string_literal: true

require "csv"
require "tmpdir"
require "faye_online/reader"
require "faye_online/reports"
require "faye_online/attendance"
require "faye_online/error"

# FayeOnline::Reports on its own: what it makes of the native reader's
# answers (FayeOnlineSpec::ScriptedReader, behind a FayeOnline::Reader). spec/integration/reports_spec.rb
# runs the same reports against real stores.
RSpec.describe FayeOnline::Reports do
  let(:lesson) { "/courses/5/lessons/1" }
  let(:other_lesson) { "/courses/6/lessons/1" }

  def at(time)
    Time.parse("2026-11-25T#{time}Z")
  end

  def ms(time)
    (at(time).to_f * 1000).round
  end

  def iso(time)
    "2026-11-25T#{time}Z"
  end

  def session(client_id, uid, uname, lesson, joined, left)
    { "client_id" => client_id, "uid" => uid, "uname" => uname, "lesson" => lesson,
      "joined_ms" => ms(joined), "left_ms" => left && ms(left) }
  end

  def window(lesson, starts, ends)
    { "lesson" => lesson, "starts_ms" => ms(starts), "ends_ms" => ms(ends) }
  end

  # A row of _lesson_times as the core computes it for the lesson's window.
  def time_row(uid, uname, attended_ms, engaged_ms, first_join, last_leave, online: false, state: nil)
    { "uid" => uid, "uname" => uname, "attended_ms" => attended_ms, "engaged_ms" => engaged_ms,
      "first_join_ms" => first_join && ms(first_join), "last_leave_ms" => last_leave && ms(last_leave),
      "online" => online, "state" => state }
  end

  describe "attendance in a scheduled lesson" do
    # 10:00 to 11:00 UTC; the defaults: late after 300 s, early by 300 s,
    # absent below 50 %.
    let(:reader) do
      FayeOnlineSpec::ScriptedReader.new(
        schedules: [window(lesson, "10:00:00", "11:00:00")],
        lesson_times: { lesson => [
          time_row(1, "ann", 3_600_000, 2_700_000, "09:58:00", "11:02:00"),
          time_row(2, "bob", 3_000_000, 1_000_000, "10:10:00", "11:00:00"),
          time_row(3, "cy", 2_400_000, 600_000, "10:00:30", "10:40:00"),
          time_row(4, "dee", 1_200_000, 0, "10:04:00", "10:24:00"),
          time_row(5, "eli", 3_300_000, 3_300_000, "10:04:59", nil, online: true, state: "active"),
          time_row(6, "fay", 3_240_000, 0, "10:01:00", "10:54:30")
        ] }
      )
    end

    def attendance(**options)
      FayeOnline::Attendance.lesson(FayeOnline::Reader.new(reader), lesson,
                                    thresholds: FayeOnline::Attendance::DEFAULTS, **options)
    end

    it "gives every status by the thresholds, which it prints, with time in percent of the window" do
      result = attendance(students: [1, 2, 3, 4, 5, 6, 7])
      expect(result).to include("lesson" => lesson, "starts_at" => "2026-11-25T10:00:00.000Z",
                                 "ends_at" => "2026-11-25T11:00:00.000Z", "time_zone" => "Etc/UTC",
                                 "thresholds" => { "late_after" => 300, "early_by" => 300, "min_attended" => 50 })
      statuses = result["students"].to_h { |s| [s["uname"].empty? ? s["uid"] : s["uname"], s["status"]] }
      expect(statuses).to eq("ann" => "present", "bob" => "late", "cy" => "left_early", "dee" => "absent",
                             "eli" => "present", "fay" => "left_early", 7 => "absent")
      ann = result["students"].first
      expect(ann).to include("attended_seconds" => 3600.0, "attended_percent" => 100.0, "engaged_seconds" => 2700.0,
                             "engaged_percent" => 75.0, "first_join" => "2026-11-25T09:58:00.000Z",
                             "last_leave" => "2026-11-25T11:02:00.000Z", "late" => false, "left_early" => false)
      eli = result["students"].find { |s| s["uid"] == 5 }
      expect(eli).to include("online" => true, "state" => "active", "last_leave" => nil)
      dee = result["students"].find { |s| s["uid"] == 4 }
      expect(dee).to include("attended_percent" => 33.3, "late" => false, "left_early" => true)
      expect(result["students"].last).to include("uid" => 7, "attended_seconds" => 0.0, "first_join" => nil)
      expect(reader.calls).to include([:_lesson_times, lesson, ms("10:00:00"), ms("11:00:00")])
    end

    it "prints times in the time zone it is given" do
      result = attendance(time_zone: "Europe/Paris")
      expect(result).to include("starts_at" => "2026-11-25T11:00:00.000+01:00", "time_zone" => "Europe/Paris")
      expect(result["students"].first["first_join"]).to eq "2026-11-25T10:58:00.000+01:00"
      expect(attendance(time_zone: "Tokyo")["ends_at"]).to eq "2026-11-25T20:00:00.000+09:00"
      expect { attendance(time_zone: "Mars/Olympus") }.to raise_error(ArgumentError, /unknown time zone/)
    end

    it "moves statuses with the thresholds" do
      strict = FayeOnline::Attendance.lesson(FayeOnline::Reader.new(reader), lesson,
                                             thresholds: { late_after: 60, early_by: 0, min_attended: 90 })
      expect(strict["students"].to_h { |s| [s["uname"], s["status"]] })
        .to eq("ann" => "present", "bob" => "absent", "cy" => "absent", "dee" => "absent", "eli" => "late", "fay" => "left_early")
      expect(strict["thresholds"]).to eq("late_after" => 60, "early_by" => 0, "min_attended" => 90)
    end

    it "refuses a lesson without a schedule and bad thresholds" do
      expect { FayeOnline::Attendance.lesson(FayeOnline::Reader.new(reader), "/courses/none", thresholds: {}) }
        .to raise_error(ArgumentError, /no schedule/)
      [{ late_after: -1 }, { min_attended: 101 }, { early_by: "soon" }, { later: 1 }, []].each do |bad|
        expect { FayeOnline::Attendance.thresholds(bad) }.to raise_error(FayeOnline::ConfigurationError), bad.inspect
      end
      expect(FayeOnline::Attendance.thresholds("late_after" => "600")).to include(late_after: 600)
    end

    it "writes attendance.csv and attendance.json for the lessons scheduled in the range" do
      Dir.mktmpdir do |dir|
        paths = described_class.report(FayeOnline::Reader.new(reader), dir: dir, from: at("09:00:00"),
                                                                       to: at("12:00:00"), time_zone: "Europe/Paris")
        rows = CSV.read(paths[2], headers: true)
        expect(rows.headers).to eq FayeOnline::Attendance::CSV_COLUMNS
        expect(rows.map { |r| [r["uname"], r["status"]] })
          .to eq [%w[ann present], %w[bob late], %w[cy left_early], %w[dee absent], %w[eli present], %w[fay left_early]]
        expect(rows.first.to_h).to include("starts_at" => "2026-11-25T11:00:00.000+01:00", "late_after_seconds" => "300",
                                           "early_by_seconds" => "300", "min_attended_percent" => "50",
                                           "time_zone" => "Europe/Paris")
        json = JSON.parse(File.read(paths[3]))
        expect(json["lessons"].map { |l| l["lesson"] }).to eq [lesson]
        expect(json["thresholds"]).to eq("late_after" => 300, "early_by" => 300, "min_attended" => 50)
        outside = described_class.report(FayeOnline::Reader.new(reader), dir: dir, from: at("10:00:01"), to: at("12:00:00"))
        expect(CSV.read(outside[2]).size).to eq 1
      end
    end
  end

  describe ".status" do
    let(:reader) do
      FayeOnlineSpec::ScriptedReader.new(status: {
        "source" => "hot",
        "rooms" => [{ "room" => "/classes/4", "count" => 2,
                      "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => %w[c1 c2] },
                                  { "uid" => 2, "uname" => "bob", "client_ids" => %w[c3] }] }],
        "lessons" => [{ "lesson" => lesson, "count" => 3,
                        "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => %w[c1], "started_ms" => ms("10:00:00") },
                                    { "uid" => 2, "uname" => "bob", "client_ids" => [], "started_ms" => nil },
                                    # Another process's clock may run ahead.
                                    { "uid" => 3, "uname" => "cat", "client_ids" => %w[c4], "started_ms" => ms("10:20:00") }] }]
      })
    end

    it "turns each running timer's start into a Time and the seconds it has run" do
      status = described_class.status(FayeOnline::Reader.new(reader), now: at("10:12:34"))
      expect(status["lessons"].first["users"]).to eq [
        { "uid" => 1, "uname" => "ann", "client_ids" => %w[c1], "started_at" => at("10:00:00"), "seconds" => 754 },
        { "uid" => 2, "uname" => "bob", "client_ids" => [], "started_at" => nil, "seconds" => nil },
        { "uid" => 3, "uname" => "cat", "client_ids" => %w[c4], "started_at" => at("10:20:00"), "seconds" => 0 }
      ]
      expect(status["lessons"].first).to include("lesson" => lesson, "count" => 3)
    end

    it "passes the source and the rooms through as the reader gave them" do
      status = described_class.status(FayeOnline::Reader.new(reader), now: at("10:12:34"))
      expect(status["source"]).to eq "hot"
      expect(status["rooms"]).to eq reader._status["rooms"]
      expect(reader.calls.first).to eq [:_status]
    end

    it "counts seconds with .running_seconds, nil for a timer that does not run" do
      expect(described_class.running_seconds(ms("10:00:00"), at("10:00:01.6"))).to eq 2
      expect(described_class.running_seconds(nil, at("10:00:00"))).to be_nil
    end
  end

  context "with a scripted log" do
    # ann: two overlapping tabs in the lesson (10:00-10:30, 10:20-10:50) and
    # five minutes in another lesson from 10:20. bob: 10:10-10:15, from a
    # row written before his name was known, then a tab open since 11:00.
    let(:reader) do
      FayeOnlineSpec::ScriptedReader.new(sessions: [
        session("a1", 1, "ann", lesson, "10:00:00", "10:30:00"),
        session("a2", 1, "ann", lesson, "10:20:00", "10:50:00"),
        session("a0", 1, "ann", other_lesson, "10:20:00", "10:25:00"),
        session("b1", 2, "", lesson, "10:10:00", "10:15:00"),
        session("b2", 2, "bob", lesson, "11:00:00", nil)
      ], lesson_times: { lesson => [time_row(1, "ann", 3_000_000, 1_200_400, "10:00:00", "10:50:00")] })
    end

    describe ".sessions" do
      it "asks for everyone's sessions from the epoch up to now by default" do
        described_class.sessions(FayeOnline::Reader.new(reader), now: at("12:00:00"))
        expect(reader.calls).to eq [[:_sessions, nil, 0, ms("12:00:00")]]
      end

      it "asks for one user's sessions, given as anything Integer() reads, within from...to" do
        described_class.sessions(FayeOnline::Reader.new(reader), user: "2", from: "2026-11-25T10:12:00Z", to: at("11:30:00"))
        expect(reader.calls).to eq [[:_sessions, 2, ms("10:12:00"), ms("11:30:00")]]
      end

      it "clips each session to the range, an open one up to its end, oldest first" do
        list = described_class.sessions(FayeOnline::Reader.new(reader), from: at("10:12:00"), to: at("11:30:00"))
        expect(list.map { |s| [s["client_id"], s["seconds"]] })
          .to eq [["a1", 1080], ["b1", 180], ["a0", 300], ["a2", 1800], ["b2", 1800]]
        expect(list.last).to eq(
          "client_id" => "b2", "uid" => 2, "uname" => "bob", "lesson" => lesson,
          "joined_at" => at("11:00:00"), "left_at" => nil, "open" => true,
          "from" => at("11:00:00"), "to" => at("11:30:00"), "seconds" => 1800
        )
        expect(list.first).to include("joined_at" => at("10:00:00"), "left_at" => at("10:30:00"), "open" => false,
                                      "from" => at("10:12:00"), "to" => at("10:30:00"))
      end

      it "refuses a range that ends before it starts, without asking the reader" do
        expect { described_class.sessions(FayeOnline::Reader.new(reader), from: at("11:00:00"), to: at("10:00:00")) }
          .to raise_error(ArgumentError, /before/)
        expect { described_class.sessions(FayeOnline::Reader.new(reader), from: at("10:00:00"), to: at("10:00:00")) }
          .to raise_error(ArgumentError, /before/)
        expect(reader.calls).to be_empty
      end
    end

    describe ".log" do
      it "lists a user's sessions and merges overlapping ones per lesson" do
        log = described_class.log(FayeOnline::Reader.new(reader), user: 1, to: at("12:00:00"))
        expect(log["uid"]).to eq 1
        expect(log["uname"]).to eq "ann"
        expect(log["sessions"].map { |s| [s["client_id"], s["seconds"]] }).to eq [["a1", 1800], ["a0", 300], ["a2", 1800]]
        expect(log["sessions"].first.keys).to eq %w[client_id lesson joined_at left_at open seconds]
        expect(log["lessons"]).to eq(
          lesson => { "seconds" => 3000, "first_join" => at("10:00:00"), "last_leave" => at("10:50:00"),
                      "engaged_seconds" => 1200 },
          other_lesson => { "seconds" => 300, "first_join" => at("10:20:00"), "last_leave" => at("10:25:00"),
                            "engaged_seconds" => 0 }
        )
      end

      it "names the user by the last name it knows, and leaves last_leave open while a session is" do
        log = described_class.log(FayeOnline::Reader.new(reader), user: 2, now: at("11:10:00"))
        expect(log["uname"]).to eq "bob"
        expect(log["lessons"][lesson]).to eq("seconds" => 900, "first_join" => at("10:10:00"), "last_leave" => nil,
                                             "engaged_seconds" => 0)
      end

      it "has an empty log for a user without sessions" do
        expect(described_class.log(FayeOnline::Reader.new(reader), user: 9, now: at("12:00:00")))
          .to eq("uid" => 9, "uname" => "", "sessions" => [], "lessons" => {})
      end
    end

    describe ".report" do
      it "writes the time per lesson and per user into two CSV files, and returns their paths" do
        Dir.mktmpdir do |dir|
          out = File.join(dir, "reports", "november")
          paths = described_class.report(FayeOnline::Reader.new(reader), dir: out, from: at("10:12:00"), to: at("11:30:00"))
          expect(paths).to eq [File.join(out, "by_lesson.csv"), File.join(out, "by_user.csv"),
                               File.join(out, "attendance.csv"), File.join(out, "attendance.json")]
          expect(CSV.read(paths[0])).to eq [
            %w[lesson uid uname seconds first_join last_leave engaged_seconds],
            [lesson, "1", "ann", "2280", iso("10:00:00"), iso("10:50:00"), "1200"],
            [lesson, "2", "bob", "1980", iso("10:10:00"), nil, "0"],
            [other_lesson, "1", "ann", "300", iso("10:20:00"), iso("10:25:00"), "0"]
          ]
          expect(CSV.read(paths[1])).to eq [
            %w[uid uname lesson seconds first_join last_leave engaged_seconds],
            ["1", "ann", lesson, "2280", iso("10:00:00"), iso("10:50:00"), "1200"],
            ["1", "ann", other_lesson, "300", iso("10:20:00"), iso("10:25:00"), "0"],
            ["2", "bob", lesson, "1980", iso("10:10:00"), nil, "0"]
          ]
        end
      end

      it "writes names that a spreadsheet would run as formulas as plain text" do
        names = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "ann-marie"]
        sessions = names.each_with_index.map do |name, i|
          session("f#{i}", 10 + i, name, lesson, "10:00:00", "10:05:00")
        end
        times = names.each_with_index.map { |name, i| time_row(10 + i, name, 300_000, 0, "10:00:00", "10:05:00") }
        formulas = FayeOnlineSpec::ScriptedReader.new(
          sessions: sessions, schedules: [window(lesson, "10:00:00", "10:30:00")], lesson_times: { lesson => times }
        )
        Dir.mktmpdir do |dir|
          paths = described_class.report(FayeOnline::Reader.new(formulas), dir: dir, from: at("09:00:00"), to: at("11:00:00"))
          paths.first(3).each do |path|
            column = CSV.read(path, headers: true).map { |row| row["uname"] }
            expect(column).to eq ["'=HYPERLINK(\"http://x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "ann-marie"]
          end
        end
      end

      it "writes the headers alone when nobody was online" do
        Dir.mktmpdir do |dir|
          paths = described_class.report(FayeOnline::Reader.new(reader), dir: dir, from: at("08:00:00"), to: at("09:00:00"))
          expect(paths.first(3).map { |path| CSV.read(path).size }).to eq [1, 1, 1]
          expect(JSON.parse(File.read(paths[3]))).to include("lessons" => [], "time_zone" => "Etc/UTC")
        end
      end
    end
  end
end
