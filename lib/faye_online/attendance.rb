# frozen_string_literal: true

require "json"
require "time"
require_relative "error"

module FayeOnline
  # Attendance for scheduled lessons: per student, attended and engaged
  # time inside the lesson's window (seconds and percent of the window),
  # first join, last leave, and a status decided by thresholds that every
  # report prints beside it:
  #
  #   absent      attended less than min_attended percent of the lesson
  #   late        first joined more than late_after seconds after the start
  #   left_early  last left more than early_by seconds before the end
  #   present     otherwise
  #
  # (in that order: a student both late and leaving early is "late"; the
  # row also says late and left_early apart). Students the app names who
  # never came are absent with zero time.
  module Attendance
    DEFAULTS = { late_after: 300, early_by: 300, min_attended: 50 }.freeze
    STATUSES = %w[present late left_early absent].freeze

    module_function

    # The thresholds from +given+ (a hash of DEFAULTS' keys), checked.
    def thresholds(given)
      raise ConfigurationError, "attendance: must be a hash such as {late_after: 300}" unless given.is_a?(Hash)

      given = given.transform_keys(&:to_sym)
      unknown = given.keys - DEFAULTS.keys
      raise ConfigurationError, "attendance: unknown #{unknown.join(', ')}; known: #{DEFAULTS.keys.join(', ')}" if unknown.any?

      DEFAULTS.merge(given).each_with_object({}) do |(key, value), out|
        number = Float(value, exception: false) if value.is_a?(Numeric) || value.is_a?(String)
        raise ConfigurationError, "attendance: #{key} must be a number of #{key == :min_attended ? 'percent' : 'seconds'} >= 0" if
          number.nil? || number.negative? || (key == :min_attended && number > 100)

        out[key] = number == number.floor ? number.to_i : number
      end
    end

    # A time zone by name ("Europe/Paris", "UTC", Rails' "Paris"), or an
    # ArgumentError naming the bad one.
    def zone(name)
      # Loaded when first needed (attendance, a report, the dashboard's
      # finished lessons), not when faye-online is: Active Support's time
      # extensions change how Time prints itself.
      require "active_support"
      require "active_support/time"
      found = name.is_a?(ActiveSupport::TimeZone) ? name : ActiveSupport::TimeZone[name.to_s]
      raise ArgumentError, "unknown time zone #{name.inspect}; give a name such as \"Europe/Paris\" or \"UTC\"" unless found

      found
    end

    # A Time from a Time, a Date, an ISO 8601 string or epoch seconds; in
    # +zone+ when the string names no offset.
    def time(value, zone, name)
      case value
      when Time then value
      when DateTime then value.to_time
      when Date then zone.local(value.year, value.month, value.day)
      when Numeric then Time.at(value)
      when String
        parsed = zone.parse(value)
        raise ArgumentError, "#{name}: #{value.inspect} is not a time" unless parsed

        parsed.to_time
      else raise ArgumentError, "#{name}: #{value.inspect} is not a time"
      end
    rescue ArgumentError => e
      raise if e.message.start_with?("#{name}:")

      raise ArgumentError, "#{name}: #{value.inspect} is not a time"
    end

    def ms(time)
      (time.to_r * 1000).round
    end

    # One scheduled lesson's attendance (see FayeOnline.attendance).
    def lesson(reader, lesson, thresholds:, students: nil, time_zone: "UTC")
      tz = zone(time_zone)
      window = reader.scheduled(lesson)
      raise ArgumentError, "#{lesson} has no schedule; set one with FayeOnline.schedule" unless window

      starts, ends = window.values_at("starts_ms", "ends_ms")
      rows = reader.lesson_times(lesson, starts, ends).to_h { |row| [row["uid"], row] }
      Array(students).each do |uid|
        uid = Integer(uid)
        rows[uid] ||= { "uid" => uid, "uname" => "", "attended_ms" => 0, "engaged_ms" => 0,
                        "first_join_ms" => nil, "last_leave_ms" => nil, "online" => false, "state" => nil }
      end
      length = ends - starts
      { "lesson" => lesson, "starts_at" => iso(starts, tz), "ends_at" => iso(ends, tz),
        "time_zone" => tz.tzinfo.name, "thresholds" => thresholds.transform_keys(&:to_s),
        "running" => now_ms < ends && now_ms >= starts,
        "students" => rows.values.sort_by { |r| r["uid"] }.map { |r| student(r, starts, ends, length, thresholds, tz) } }
    end

    def student(row, starts, ends, length, thresholds, tz)
      attended = row["attended_ms"]
      first = row["first_join_ms"]
      last = row["last_leave_ms"]
      # Judged by the first and last moments present inside the window: a
      # visit before the start does not make a late student punctual, nor
      # one after the end an early leaver stay. A student still there while
      # the lesson runs has not left early.
      first_in = row.fetch("first_in_window_ms", first)
      last_in = row.fetch("last_in_window_ms", last)
      running = now_ms < ends
      late = !first_in.nil? && first_in > starts + (thresholds[:late_after] * 1000)
      left_early = !(row["online"] && running) && !last_in.nil? && last_in < ends - (thresholds[:early_by] * 1000)
      absent = attended * 100 < thresholds[:min_attended] * length
      status = if absent then "absent"
               elsif late then "late"
               elsif left_early then "left_early"
               else "present"
               end
      { "uid" => row["uid"], "uname" => row["uname"],
        "attended_seconds" => (attended / 1000.0).round(3), "attended_percent" => percent(attended, length),
        "engaged_seconds" => (row["engaged_ms"] / 1000.0).round(3), "engaged_percent" => percent(row["engaged_ms"], length),
        "first_join" => first && iso(first, tz), "last_leave" => last && iso(last, tz),
        "online" => row["online"], "state" => row["state"],
        "late" => late, "left_early" => left_early, "status" => status }
    end

    def percent(part, whole)
      whole.positive? ? (part * 100.0 / whole).round(1) : 0.0
    end

    def iso(ms, tz)
      Time.at(Rational(ms, 1000)).in_time_zone(tz).iso8601(3)
    end

    def now_ms
      (Time.now.to_r * 1000).round
    end

    CSV_COLUMNS = %w[lesson starts_at ends_at uid uname attended_seconds attended_percent engaged_seconds
                     engaged_percent first_join last_leave status late_after_seconds early_by_seconds
                     min_attended_percent time_zone].freeze

    # The CSV rows of lessons' attendance (each row carries the thresholds
    # and the time zone, so nobody has to guess how its status was decided).
    def csv_rows(lessons)
      lessons.flat_map do |lesson|
        t = lesson["thresholds"]
        lesson["students"].map do |s|
          [lesson["lesson"], lesson["starts_at"], lesson["ends_at"], s["uid"], s["uname"], s["attended_seconds"],
           s["attended_percent"], s["engaged_seconds"], s["engaged_percent"], s["first_join"], s["last_leave"],
           s["status"], t["late_after"], t["early_by"], t["min_attended"], lesson["time_zone"]]
        end
      end
    end
  end
end
