# frozen_string_literal: true

require "csv"
require "tmpdir"
require "faye_online/reader"
require "faye_online/reports"

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
      ])
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
          lesson => { "seconds" => 3000, "first_join" => at("10:00:00"), "last_leave" => at("10:50:00") },
          other_lesson => { "seconds" => 300, "first_join" => at("10:20:00"), "last_leave" => at("10:25:00") }
        )
      end

      it "names the user by the last name it knows, and leaves last_leave open while a session is" do
        log = described_class.log(FayeOnline::Reader.new(reader), user: 2, now: at("11:10:00"))
        expect(log["uname"]).to eq "bob"
        expect(log["lessons"][lesson]).to eq("seconds" => 900, "first_join" => at("10:10:00"), "last_leave" => nil)
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
          expect(paths).to eq [File.join(out, "by_lesson.csv"), File.join(out, "by_user.csv")]
          expect(CSV.read(paths[0])).to eq [
            %w[lesson uid uname seconds first_join last_leave],
            [lesson, "1", "ann", "2280", iso("10:00:00"), iso("10:50:00")],
            [lesson, "2", "bob", "1980", iso("10:10:00"), nil],
            [other_lesson, "1", "ann", "300", iso("10:20:00"), iso("10:25:00")]
          ]
          expect(CSV.read(paths[1])).to eq [
            %w[uid uname lesson seconds first_join last_leave],
            ["1", "ann", lesson, "2280", iso("10:00:00"), iso("10:50:00")],
            ["1", "ann", other_lesson, "300", iso("10:20:00"), iso("10:25:00")],
            ["2", "bob", lesson, "1980", iso("10:10:00"), nil]
          ]
        end
      end

      it "writes names that a spreadsheet would run as formulas as plain text" do
        names = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tx", "ann-marie"]
        sessions = names.each_with_index.map do |name, i|
          session("f#{i}", 10 + i, name, lesson, "10:00:00", "10:05:00")
        end
        formulas = FayeOnlineSpec::ScriptedReader.new(sessions: sessions)
        Dir.mktmpdir do |dir|
          paths = described_class.report(FayeOnline::Reader.new(formulas), dir: dir, from: at("09:00:00"), to: at("11:00:00"))
          paths.each do |path|
            column = CSV.read(path, headers: true).map { |row| row["uname"] }
            expect(column).to eq ["'=HYPERLINK(\"http://x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "ann-marie"]
          end
        end
      end

      it "writes the headers alone when nobody was online" do
        Dir.mktmpdir do |dir|
          paths = described_class.report(FayeOnline::Reader.new(reader), dir: dir, from: at("08:00:00"), to: at("09:00:00"))
          expect(paths.map { |path| CSV.read(path).size }).to eq [1, 1]
        end
      end
    end
  end
end
