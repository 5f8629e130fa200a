# frozen_string_literal: true

require "csv"
require "date"
require "fileutils"
require "json"
require "time"

module FayeOnline
  # Who is online now, and what the login/logout log says about time spent:
  # FayeOnline.status, FayeOnline.log and FayeOnline.report.
  module Reports
    module_function

    # { "source" => "hot" | "sql",
    #   "rooms" => [{ "room" => "/classes/4", "count" => 1,
    #                 "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => [...] }] }],
    #   "lessons" => [{ "lesson" => "/courses/5/lessons/1", "count" => 1,
    #                   "users" => [{ "uid" => 1, "uname" => "ann", "client_ids" => [...],
    #                                 "started_at" => Time, "seconds" => 42 }] }] }
    def status(reader, now: Time.now)
      status = reader.status
      status["lessons"].each do |lesson|
        lesson["users"].each do |user|
          started_ms = user.delete("started_ms")
          user["started_at"] = started_ms && Time.at(started_ms / 1000.0)
          user["seconds"] = running_seconds(started_ms, now)
        end
      end
      status
    end

    # Whole seconds from +started_ms+ (ms since the epoch) to +now+; nil
    # for a timer that does not run.
    def running_seconds(started_ms, now)
      started_ms && [(now.to_f - started_ms / 1000.0).round, 0].max
    end

    # The sessions of one user (or of everyone, with user: nil) overlapping
    # [from, to), clipped to it: one per clientId, from its login row to its
    # logout row. A session without a logout row is still open (online now,
    # or left behind by a process that died) and counts up to `to`.
    def sessions(reader, user: nil, from: nil, to: nil, now: Time.now)
      to_time = to ? to_time(to) : now
      from_time = from ? to_time(from) : Time.at(0)
      raise ArgumentError, "from: must be before to:" unless from_time < to_time

      rows = reader.sessions(user ? Integer(user) : nil, ms(from_time), ms(to_time))
      rows.sort_by { |row| [row["joined_ms"], row["client_id"]] }.map do |row|
        joined = Time.at(row["joined_ms"] / 1000.0)
        left = row["left_ms"] && Time.at(row["left_ms"] / 1000.0)
        start = [joined, from_time].max
        stop = [left || to_time, to_time].min
        { "client_id" => row["client_id"], "uid" => row["uid"], "uname" => row["uname"],
          "lesson" => row["lesson"], "joined_at" => joined, "left_at" => left, "open" => left.nil?,
          "from" => start, "to" => stop, "seconds" => [(stop - start).round, 0].max }
      end
    end

    # Per lesson, the user's time with overlapping sessions merged (two tabs
    # open at once count once), first join and last leave.
    # Each lesson also has "engaged_seconds": the time one of the user's
    # pages was active, from the interval ledger, in the same range.
    def log(reader, user:, from: nil, to: nil, now: Time.now)
      list = sessions(reader, user: user, from: from, to: to, now: now)
      from_ms = from ? ms(to_time(from)) : 0
      to_ms = ms(to ? to_time(to) : now)
      lessons = list.group_by { |s| s["lesson"] }.to_h do |lesson, group|
        engaged = reader.lesson_time(Integer(user), lesson, from_ms, to_ms)["engaged_ms"]
        [lesson, summary(group).merge("engaged_seconds" => (engaged / 1000.0).round)]
      end
      { "uid" => Integer(user), "uname" => list.map { |s| s["uname"] }.reject(&:empty?).last.to_s,
        "sessions" => list.map { |s| s.reject { |k, _| %w[uid uname from to].include?(k) } },
        "lessons" => lessons }
    end

    # Writes four files into `dir` and returns their paths:
    #   by_lesson.csv    lesson, uid, uname, seconds, first_join, last_leave,
    #                    engaged_seconds (from the interval ledger, in range)
    #   by_user.csv      the same, by user
    #   attendance.csv   per student of each lesson scheduled to start in
    #                    [from, to): attended and engaged seconds and percent,
    #                    first join, last leave, status, and the thresholds
    #                    and time zone that decided it (Attendance)
    #   attendance.json  the same, one object per lesson
    # The login log's times are ISO 8601 in UTC (last_leave is empty while a
    # session is open); attendance's are in `time_zone`.
    def report(reader, dir:, from: nil, to: nil, now: Time.now, time_zone: "UTC",
               thresholds: Attendance::DEFAULTS)
      tz = Attendance.zone(time_zone)
      # A date or a time without an offset is in the time zone asked.
      from = Attendance.time(from, tz, "from") if from.is_a?(String) || from.is_a?(Date)
      to = Attendance.time(to, tz, "to") if to.is_a?(String) || to.is_a?(Date)
      paths = login_report(reader, dir: dir, from: from, to: to, now: now)
      from_ms = from ? ms(to_time(from)) : 0
      to_ms = to ? ms(to_time(to)) : ms(now)
      lessons = reader.schedules(from_ms, to_ms).map do |scheduled|
        Attendance.lesson(reader, scheduled["lesson"], thresholds: thresholds, time_zone: tz)
      end
      csv = File.join(dir, "attendance.csv")
      CSV.open(csv, "w") do |out|
        out << Attendance::CSV_COLUMNS
        Attendance.csv_rows(lessons).each { |row| out << row.map { |cell| inert(cell) } }
      end
      json = File.join(dir, "attendance.json")
      File.write(json, JSON.pretty_generate("time_zone" => tz.tzinfo.name,
                                            "thresholds" => thresholds.transform_keys(&:to_s), "lessons" => lessons))
      paths + [csv, json]
    end

    def login_report(reader, dir:, from:, to:, now:)
      from_ms = from ? ms(to_time(from)) : 0
      to_ms = ms(to ? to_time(to) : now)
      engaged = Hash.new do |cache, lesson|
        cache[lesson] = reader.lesson_times(lesson, from_ms, to_ms).to_h { |t| [t["uid"], t["engaged_ms"]] }
      end
      rows = sessions(reader, from: from, to: to, now: now)
             .group_by { |s| [s["lesson"], s["uid"]] }
             .map do |(lesson, uid), group|
               names = group.map { |s| s["uname"] }.reject(&:empty?)
               engaged_seconds = (engaged[lesson].fetch(uid, 0) / 1000.0).round
               [lesson, uid, names.last.to_s, summary(group).merge("engaged_seconds" => engaged_seconds)]
             end
      FileUtils.mkdir_p(dir)
      by_lesson = rows.sort_by { |lesson, uid, _, _| [lesson, uid] }
                      .map { |lesson, uid, uname, s| [lesson, uid, uname, *figures(s)] }
      by_user = rows.sort_by { |lesson, uid, _, _| [uid, lesson] }
                    .map { |lesson, uid, uname, s| [uid, uname, lesson, *figures(s)] }
      [write_csv(File.join(dir, "by_lesson.csv"), %w[lesson uid uname], by_lesson),
       write_csv(File.join(dir, "by_user.csv"), %w[uid uname lesson], by_user)]
    end

    def figures(summary)
      [summary["seconds"], iso(summary["first_join"]), iso(summary["last_leave"]), summary["engaged_seconds"]]
    end

    def write_csv(path, key_columns, rows)
      CSV.open(path, "w") do |csv|
        csv << key_columns + %w[seconds first_join last_leave engaged_seconds]
        rows.each { |row| csv << row.map { |cell| inert(cell) } }
      end
      path
    end

    # Spreadsheets run a cell that starts with = + - @ (or a tab or a
    # carriage return) as a formula; a name a user chose is data, so such
    # a cell starts with ' instead (OWASP's advice for CSV injection).
    FORMULA_START = /\A[=+\-@\t\r]/.freeze

    def inert(cell)
      cell.is_a?(String) && cell.match?(FORMULA_START) ? "'#{cell}" : cell
    end

    # Merged seconds, first join and last leave (nil while one is open).
    def summary(group)
      spans = group.map { |s| [s["from"], s["to"]] }.sort
      merged = spans.each_with_object([]) do |(a, b), out|
        if out.any? && a <= out.last[1]
          out.last[1] = [out.last[1], b].max
        else
          out << [a, b]
        end
      end
      { "seconds" => merged.sum { |a, b| (b - a) }.round,
        "first_join" => group.map { |s| s["joined_at"] }.min,
        "last_leave" => group.any? { |s| s["open"] } ? nil : group.map { |s| s["left_at"] }.max }
    end

    def to_time(value)
      case value
      when Time then value
      when Date then value.to_time
      when Numeric then Time.at(value)
      else Time.parse(value.to_s)
      end
    end

    def ms(time)
      (time.to_f * 1000).round
    end

    def iso(time)
      time&.utc&.iso8601
    end
  end
end
