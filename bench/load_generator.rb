# frozen_string_literal: true

# The load generator: a process of its own (never inside the server) with
# real Bayeux clients (Ruby's Faye::Client) over long-polling or WebSocket
# on loopback. Prints one JSON line of results.
#
#   ruby bench/load_generator.rb cycles URL TRANSPORT CLIENTS SECONDS AUTH
#     CLIENTS clients each repeat: handshake, connect, subscribe, publish,
#     receive their own message, disconnect. With AUTH=1 each carries
#     faye-online's auth (a user of its own). Reports cycles per second and
#     the publish-to-delivery latency of every message.
#
#   ruby bench/load_generator.rb steady URL TRANSPORT CLIENTS SECONDS AUTH
#     CLIENTS clients join once, then publish and receive their own
#     messages over and over. Reports messages per second and latency.
#
#   ruby bench/load_generator.rb presence URL RATE SECONDS
#     A watcher subscribes to a room's user_list; raw Bayeux clients join
#     and leave at RATE changes per second in all. Reports, per join, the
#     time from its /meta/connect leaving here to the watcher receiving the
#     list that names it.
require_relative "support"
require "eventmachine"
require "faye"
require "json"
require "net/http"

module Bench
  module LoadGenerator
    module_function

    def now
      Bench.now
    end

    # Adds faye-online's auth to /meta/connect, as faye-online.js does.
    class Auth
      def initialize(auth)
        @auth = auth
      end

      def outgoing(message, callback)
        message["auth"] = @auth if message["channel"] == "/meta/connect"
        callback.call(message)
      end
    end

    def cycles(url, transport, clients, seconds, auth)
      latencies = []
      done = 0
      errors = 0
      stop_at = nil
      EM.run do
        stop_at = now + seconds
        clients.times do |i|
          run_cycle = lambda do |n|
            if now >= stop_at
              EM.stop if (clients -= 1).zero?
              next
            end
            client = Faye::Client.new(url, timeout: 60)
            client.disable("websocket") if transport == "long-polling"
            client.disable("autodisconnect")
            if auth
              uid = 1_000_000 + i * 10_000 + n
              client.add_extension(Auth.new("room_channel" => "/load/#{i % 20}", "time_channel" => "/load/#{i % 20}/lesson",
                                            "current_user" => { "uid" => uid, "uname" => "load#{uid}" }))
            end
            channel = "/bench/#{i}"
            sent = nil
            subscription = client.subscribe(channel) do |_data|
              latencies << now - sent
              done += 1
              client.disconnect
              EM.next_tick { run_cycle.call(n + 1) }
            end
            subscription.callback do
              sent = now
              client.publish(channel, "n" => n).errback { errors += 1 }
            end
            subscription.errback do
              errors += 1
              EM.next_tick { run_cycle.call(n + 1) }
            end
          end
          run_cycle.call(0)
        end
        EM.add_timer(seconds + 30) { EM.stop }
      end
      { cycles: done, seconds: seconds, cycles_per_s: done / seconds.to_f, errors: errors,
        latency_p50_ms: pct(latencies, 50) * 1e3, latency_p99_ms: pct(latencies, 99) * 1e3,
        latency_max_ms: (latencies.max || 0) * 1e3 }
    end

    # CLIENTS clients join once, then each publishes on its own channel and
    # waits for its message, again and again: a room's ordinary traffic.
    # Timing starts when every client is in.
    def steady(url, transport, clients, seconds, auth)
      latencies = []
      errors = 0
      stop_at = nil
      EM.run do
        ready = 0
        clients.times do |i|
          client = Faye::Client.new(url, timeout: 60)
          client.disable("websocket") if transport == "long-polling"
          client.disable("autodisconnect")
          if auth
            uid = 3_000_000 + i
            client.add_extension(Auth.new("room_channel" => "/steady/#{i % 20}", "time_channel" => "/steady/#{i % 20}/lesson",
                                          "current_user" => { "uid" => uid, "uname" => "s#{uid}" }))
          end
          channel = "/steady/#{i}/messages"
          sent = nil
          publish = lambda do
            next if stop_at && now >= stop_at

            sent = now
            client.publish(channel, "n" => i).errback { errors += 1 }
          end
          client.subscribe(channel) do |_|
            latencies << now - sent if stop_at
            publish.call
          end.callback do
            ready += 1
            if ready == clients
              stop_at = now + seconds
              EM.add_timer(seconds + 1) { EM.stop }
            end
            publish.call
          end
        end
        EM.add_timer(seconds + 60) { EM.stop }
      end
      { messages: latencies.size, seconds: seconds, messages_per_s: latencies.size / seconds.to_f, errors: errors,
        latency_p50_ms: pct(latencies, 50) * 1e3, latency_p99_ms: pct(latencies, 99) * 1e3,
        latency_max_ms: (latencies.max || 0) * 1e3 }
    end

    def presence(url, rate, seconds)
      uri = URI(url)
      room = "/latency/#{Process.pid}"
      sent_at = {}
      latencies = []
      errors = 0
      http = Net::HTTP.new(uri.host, uri.port)
      http.start
      post = lambda do |messages|
        JSON.parse(http.post(uri.path, JSON.generate(messages), "Content-Type" => "application/json").body)
      end
      EM.run do
        watcher = Faye::Client.new(url)
        watcher.subscribe("#{room}/user_list") do |list|
          Array(list["joined"]).each do |u|
            t = sent_at.delete(u["uid"])
            latencies << now - t if t
          end
        end.callback do
          # Joins and leaves from a thread of their own, paced to the rate.
          Thread.new do
            interval = 2.0 / rate # a join and a leave per interval
            started = now
            n = 0
            while now - started < seconds
              n += 1
              uid = 2_000_000 + n
              reply = post.call([{ "channel" => "/meta/handshake", "version" => "1.0",
                                   "supportedConnectionTypes" => ["long-polling"] }]).first
              cid = reply["clientId"]
              auth = { "room_channel" => room, "time_channel" => "#{room}/lesson",
                       "current_user" => { "uid" => uid, "uname" => "u#{uid}" } }
              sent_at[uid] = now
              ok = post.call([{ "channel" => "/meta/connect", "clientId" => cid, "connectionType" => "long-polling",
                                "advice" => { "timeout" => 0 }, "auth" => auth }]).first["successful"]
              errors += 1 unless ok
              post.call([{ "channel" => "/meta/disconnect", "clientId" => cid }])
              pause = started + n * interval - now
              sleep pause if pause.positive?
            end
            @elapsed = now - started
            @joins = n
            EM.add_timer(2) { EM.stop }
          end
        end
      end
      { joins: @joins, changes_per_s: @joins * 2 / @elapsed, target_rate: rate, measured: latencies.size,
        errors: errors, latency_p50_ms: pct(latencies, 50) * 1e3, latency_p99_ms: pct(latencies, 99) * 1e3,
        latency_max_ms: (latencies.max || 0) * 1e3 }
    end

    def pct(values, p)
      Bench.percentile(values, p)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  mode, url, *rest = ARGV
  result =
    case mode
    when "cycles"
      transport, clients, seconds, auth = rest
      Bench::LoadGenerator.cycles(url, transport, Integer(clients), Float(seconds), auth == "1")
    when "steady"
      transport, clients, seconds, auth = rest
      Bench::LoadGenerator.steady(url, transport, Integer(clients), Float(seconds), auth == "1")
    when "presence"
      rate, seconds = rest
      Bench::LoadGenerator.presence(url, Float(rate), Float(seconds))
    else
      abort "usage: load_generator.rb cycles|presence URL ..."
    end
  puts JSON.generate(result)
end
