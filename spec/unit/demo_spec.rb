# frozen_string_literal: true

require "cgi"
require "json"
require "tmpdir"
require "faye_online/demo"

# The demo classroom as a Rack app: off unless demo: true, the page with
# Faye's mount, and (with a secret) identities signed for the page.
RSpec.describe FayeOnline::Demo do
  let(:fallback) { ->(_env) { [404, { "Content-Type" => "text/plain" }, ["Not found\n"]] } }

  before(:all) { FayeOnlineSpec.load_gem! }

  def demo(**options)
    config = FayeOnline::Configuration.new({ store: :memory, mount: "/live", **options }, env: {}, root: Dir.tmpdir)
    described_class.new(config, fallback)
  end

  def get(app, path, query = "")
    app.call("REQUEST_METHOD" => "GET", "PATH_INFO" => path, "QUERY_STRING" => query)
  end

  it "is off by default: / answers what a bare Faye server does" do
    expect(get(demo, "/").first).to eq 404
    expect(get(demo, "/faye-online/demo/auth", "uid=1").first).to eq 404
    expect(get(demo(demo: "yes"), "/").first).to eq 404
  end

  it "serves the page at / with demo: true, naming Faye's mount" do
    status, headers, body = get(demo(demo: true), "/")
    expect(status).to eq 200
    expect(headers).to include("Content-Type" => "text/html; charset=utf-8", "Cache-Control" => "no-store")
    expect(CGI.unescapeHTML(body.join[/data-mount="([^"]*)"/, 1])).to eq "/live"
    expect(body.join[/data-signed="([^"]*)"/, 1]).to eq "false"
    expect(get(demo(demo: true), "/other").first).to eq 404
  end

  it "signs the identity a page asks for when a secret is set, and refuses a claim the server would" do
    secret = "demo-secret-0123456789"
    app = demo(demo: true, secret: secret)
    expect(get(app, "/").last.join[/data-signed="([^"]*)"/, 1]).to eq "true"
    status, _, body = get(app, "/faye-online/demo/auth",
                          "uid=7&uname=Ada&room=%2Fclasses%2F1&lesson=%2Fcourses%2F1%2Flessons%2F1")
    expect(status).to eq 200
    opts = JSON.parse(body.join)
    expect(opts).to include("room_channel" => "/classes/1", "current_user" => { "uid" => 7, "uname" => "Ada" })
    expect(opts["token"]).to eq FayeOnline.auth_token(uid: 7, uname: "Ada", room_channel: "/classes/1",
                                                       time_channel: "/courses/1/lessons/1",
                                                       expires: opts["expires"], secret: secret)
    ["", "uid=x&uname=Ada&room=%2Fc&lesson=%2Fl", "uid=7&uname=Ada&room=%2Fc%2F*&lesson=%2Fl",
     "uid=7&uname=&room=%2Fc&lesson=%2Fl"].each do |query|
      status, _, body = get(app, "/faye-online/demo/auth", query)
      expect(status).to eq(400), query
      expect(JSON.parse(body.join)["error"]).to be_a(String)
    end
  end
end
