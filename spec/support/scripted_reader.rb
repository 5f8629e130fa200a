# frozen_string_literal: true

module FayeOnlineSpec
  # Stands in for FayeOnline::Native::Query in unit specs of the Ruby that
  # reads through it (Reports, Dashboard). It answers the native read calls
  # in the shapes the binding returns, from what the spec scripts, and
  # records each call. It models our own boundary, not Redis or SQL: which
  # sessions overlap a range is the one rule of the store it keeps, since
  # the binding promises it.
  class ScriptedReader
    attr_reader :calls

    # status: what _status returns; sessions: the rows _sessions picks
    # from; online_times: { [uid, lesson] => seconds } for _online_time.
    # schedules: [{"lesson", "starts_ms", "ends_ms"}] for _schedules and
    # _scheduled; lesson_times: { lesson => rows } for _lesson_times, rows
    # as the core computes them for the lesson's window.
    def initialize(status: { "source" => "hot", "rooms" => [], "lessons" => [] }, sessions: [], online_times: {},
                   schedules: [], lesson_times: {})
      @status = status
      @sessions = sessions
      @online_times = online_times
      @schedules = schedules
      @lesson_times = lesson_times
      @calls = []
    end

    # The lessons whose window starts in [from_ms, to_ms), by start.
    def _schedules(from_ms, to_ms)
      @calls << [:_schedules, from_ms, to_ms]
      deep_copy(@schedules.select { |s| s["starts_ms"] >= from_ms && s["starts_ms"] < to_ms }.sort_by { |s| s["starts_ms"] })
    end

    def _scheduled(lesson)
      @calls << [:_scheduled, lesson]
      deep_copy(@schedules.find { |s| s["lesson"] == lesson })
    end

    # A user's figures in a lesson: their row of lesson_times, if any.
    def _lesson_time(uid, lesson, from_ms, to_ms)
      @calls << [:_lesson_time, uid, lesson, from_ms, to_ms]
      row = @lesson_times.fetch(lesson, []).find { |r| r["uid"] == uid }
      { "attended_ms" => row ? row["attended_ms"] : 0, "engaged_ms" => row ? row["engaged_ms"] : 0 }
    end

    def _lessons_times(lessons)
      @calls << [:_lessons_times, lessons]
      lessons.to_h { |lesson| [lesson, deep_copy(@lesson_times.fetch(lesson, []))] }
    end

    def _lesson_times(lesson, from_ms, to_ms)
      @calls << [:_lesson_times, lesson, from_ms, to_ms]
      deep_copy(@lesson_times.fetch(lesson, []))
    end

    # A new Hash on every call, as the binding builds one (callers edit it).
    def _status
      @calls << [:_status]
      deep_copy(@status)
    end

    # The sessions of uid (nil: everyone) that began before before_ms and
    # had not ended by after_ms, oldest first.
    def _sessions(uid, after_ms, before_ms)
      @calls << [:_sessions, uid, after_ms, before_ms]
      raise TypeError, "uid must be nil or an Integer, not #{uid.inspect}" unless uid.nil? || uid.is_a?(Integer)
      raise TypeError, "the range must be Integer milliseconds" unless after_ms.is_a?(Integer) && before_ms.is_a?(Integer)

      rows = @sessions.select do |row|
        (uid.nil? || row["uid"] == uid) && row["joined_ms"] < before_ms &&
          (row["left_ms"].nil? || row["left_ms"] > after_ms)
      end
      deep_copy(rows.sort_by { |row| row["joined_ms"] })
    end

    def _online_time(uid, lesson)
      @calls << [:_online_time, uid, lesson]
      @online_times.fetch([uid, lesson], 0)
    end

    private

    def deep_copy(value)
      Marshal.load(Marshal.dump(value))
    end
  end
end
