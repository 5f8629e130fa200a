# frozen_string_literal: true

require "logger"
require "stringio"
require "faye_online/events"
require "faye_online/webhook"

RSpec.describe FayeOnline::Events do
  let(:log) { StringIO.new }
  let(:events) { described_class.new(logger: Logger.new(log)) }

  def event(kind, uid: 1, room: "/classes/1")
    { "event" => kind.to_s, "room" => room, "lesson" => "/courses/1/lessons/1",
      "user" => { "uid" => uid, "uname" => "u#{uid}" }, "at" => "2026-11-30T10:00:00.000Z", "at_ms" => 0 }
  end

  it "calls the handlers of each kind, and of :any, in order, off the calling thread" do
    seen = Queue.new
    events.on(:left) { |e| seen << [:left, e["user"]["uid"], Thread.current] }
    events.on(:any) { |e| seen << [:any, e["event"], Thread.current] }
    events.push(event(:joined, uid: 1))
    events.push(event(:left, uid: 2))
    expect(events.drain(5)).to be true
    got = Array.new(seen.size) { seen.pop }
    expect(got.map { |g| g.first(2) }).to eq [[:any, "joined"], [:left, 2], [:any, "left"]]
    expect(got.map(&:last).uniq.size).to eq 1
    expect(got.first.last).not_to eq Thread.current
  end

  it "logs a callback that raises and goes on with the others" do
    seen = Queue.new
    events.on(:joined) { |_e| raise ArgumentError, "broken callback" }
    events.on(:joined) { |e| seen << e["user"]["uid"] }
    events.push(event(:joined, uid: 7))
    events.push(event(:joined, uid: 8))
    expect(events.drain(5)).to be true
    expect([seen.pop, seen.pop]).to eq [7, 8]
    expect(log.string.scan("a joined callback raised ArgumentError: broken callback").size).to eq 2
  end

  it "hands every callback the same frozen event" do
    seen = Queue.new
    events.on(:any) { |e| e["room"] << "!" }
    events.on(:any) { |e| seen << e }
    events.push(event(:vacated))
    events.drain(5)
    got = seen.pop
    expect(got["room"]).to eq "/classes/1"
    expect(got).to be_frozen
    expect(got["user"]).to be_frozen
    expect(log.string).to include("FrozenError")
  end

  it "stops calling a handler taken off, and queues nothing without handlers" do
    calls = 0
    handler = events.on(:any) { |_e| calls += 1 }
    events.push(event(:joined))
    events.drain(5)
    events.off(handler)
    expect(events.listening?).to be false
    events.push(event(:joined))
    events.drain(5)
    expect(calls).to eq 1
  end

  it "refuses unknown kinds and handlers that cannot be called" do
    expect { events.on(:arrived) {} }.to raise_error(ArgumentError, /unknown event :arrived/)
    expect { events.on(:joined) }.to raise_error(ArgumentError, /needs a block/)
    expect { events.on(:joined, "not callable") }.to raise_error(ArgumentError, /needs a block/)
  end
end

RSpec.describe FayeOnline::Webhook do
  let(:secret) { "webhook-secret-0123456789" }

  it "signs a body with HMAC-SHA256 and verifies only that signature" do
    body = JSON.generate("id" => "x", "events" => [{ "event" => "left" }])
    signature = described_class.signature(body, secret)
    expect(signature).to match(/\Asha256=\h{64}\z/)
    expect(described_class.verify(body, signature, secret)).to eq [{ "event" => "left" }]
    expect(described_class.verify(body, signature.upcase, secret)).to be_nil
    expect(described_class.verify("#{body} ", signature, secret)).to be_nil
    expect(described_class.verify(body, signature, "")).to be_nil
    expect(described_class.verify(body, "", secret)).to be_nil
    expect(described_class.verify(body, nil, secret)).to be_nil
    other = JSON.generate("events" => "not a list")
    expect(described_class.verify(other, described_class.signature(other, secret), secret)).to be_nil
  end

  it "refuses a bad URL, a missing secret and a negative delay" do
    expect { described_class.new(url: "ftp://x/y", secret: secret) }.to raise_error(ArgumentError, /http/)
    expect { described_class.new(url: "http://127.0.0.1:1/x", secret: "") }.to raise_error(ArgumentError, /secret/)
    expect { described_class.new(url: "http://127.0.0.1:1/x", secret: secret, delay: -1) }
      .to raise_error(ArgumentError, /webhook_delay/)
  end

  it "pairs a leave with the same user's join within the delay, and a vacated room with its occupation" do
    hook = described_class.new(url: "http://127.0.0.1:1/x", secret: secret, delay: 3600)
    base = { "room" => "/classes/1", "lesson" => "/l/1" }
    left = base.merge("event" => "left", "user" => { "uid" => 1 })
    vacated = base.merge("event" => "vacated", "user" => { "uid" => 1 })
    hook.call(left)
    hook.call(vacated)
    hook.call(base.merge("event" => "joined", "user" => { "uid" => 2 })) # another user: kept
    expect(hook.pending).to eq 3
    hook.call(base.merge("event" => "occupied", "user" => { "uid" => 1 }))
    hook.call(base.merge("event" => "joined", "user" => { "uid" => 1 }))
    expect(hook.pending).to eq 1
    hook.call(base.merge("event" => "joined", "room" => "/classes/2", "user" => { "uid" => 1 }))
    expect(hook.pending).to eq 2
  end
end
