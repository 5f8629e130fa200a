# frozen_string_literal: true

module FayeOnline
  # The read API over a native query (FayeOnline::Native::Query: the
  # server's own, or one on the configured stores in a process without a
  # server). It is the one place that calls the native read methods (those
  # whose names start with `_`); everything else reads through it.
  class Reader
    def initialize(native)
      @native = native
    end

    # [{"uid" => 470700, "uname" => "mvj3"}, ...], sorted by uid.
    def online_users(room_channel)
      @native._online_users(room_channel.to_s)
    end

    # Seconds +uid+ spent in +time_channel+, counting a running session.
    def online_time(uid, time_channel)
      @native._online_time(Integer(uid), time_channel.to_s)
    end

    # {"attended_ms" => n, "engaged_ms" => n} from the interval ledger.
    # Clipped to [from_ms, to_ms) when both are given.
    def lesson_time(uid, lesson, from_ms = nil, to_ms = nil)
      @native._lesson_time(Integer(uid), lesson.to_s, from_ms, to_ms)
    end

    # The interval ledger's rows of +lesson+ (of +uid+, or everyone's).
    def intervals(lesson, uid = nil)
      @native._intervals(lesson.to_s, uid.nil? ? nil : Integer(uid))
    end

    # Every user's time in +lesson+, clipped to [from_ms, to_ms) when both
    # are given (see Query::lesson_times in the core).
    def lesson_times(lesson, from_ms = nil, to_ms = nil)
      @native._lesson_times(lesson.to_s, from_ms, to_ms)
    end

    # lesson_times of several lessons: { lesson => rows }.
    def lessons_times(lessons)
      @native._lessons_times(lessons.map(&:to_s))
    end

    def schedule(lesson, starts_ms, ends_ms)
      @native._schedule(lesson.to_s, Integer(starts_ms), Integer(ends_ms))
    end

    # {"lesson", "starts_ms", "ends_ms"} or nil.
    def scheduled(lesson)
      @native._scheduled(lesson.to_s)
    end

    # The lessons whose window starts in [from_ms, to_ms).
    def schedules(from_ms, to_ms)
      @native._schedules(Integer(from_ms), Integer(to_ms))
    end

    # {"source" => "hot" | "sql", "rooms" => [...], "lessons" => [...]}; a
    # lesson's users carry "started_ms" (ms since the epoch, or nil).
    def status
      @native._status
    end

    # The sessions of +uid+ (nil: everyone) overlapping [after_ms, before_ms).
    def sessions(uid, after_ms, before_ms)
      @native._sessions(uid.nil? ? nil : Integer(uid), Integer(after_ms), Integer(before_ms))
    end

    def failed_records
      @native._failed_records
    end

    # [written, still failing]
    def replay_failed
      @native._replay_failed
    end
  end
end
