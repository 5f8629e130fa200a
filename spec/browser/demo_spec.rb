# frozen_string_literal: true

require "uri"

# The demo classroom that bin/dev serves at /: two windows join the same
# room and see each other on the live roster; closing one shows the leave.
# Its screenshot is kept in tmp/screenshots/ (the README's picture comes
# from it).
RSpec.describe "The demo classroom", :browser, :integration do
  demo_secret = "demo-secret-0123456789"

  [{}, { secret: demo_secret }].each do |extra|
    on_each_deployment(only: extra.empty? ? nil : :any, server: { demo: true, **extra }) do |configuration|
      include_context "a browser"

      let(:room) { new_room }
      let(:lesson) { new_lesson }

      define_method(:demo_url) do |name|
        base = server_url.sub(%r{/faye\z}, "")
        "#{base}/?#{URI.encode_www_form(name: name, room: room, lesson: lesson, join: 1)}"
      end

      define_method(:roster) do |page|
        @browser.eval(page, "Array.from(document.querySelectorAll('#roster li')).map(function (li) { " \
                            "return li.firstChild.nextSibling.textContent; })")
      end

      it "shows two windows each other, live, and the leave when one closes#{extra.empty? ? '' : ' (signed)'}" do
        @browser.open("ada", user: "ada", url: demo_url("Ada"))
        eventually(timeout: 10) { expect(@browser.eval("ada", "window.demo.joined")).to be true }
        eventually { expect(roster("ada")).to eq ["Ada"] }
        @browser.open("grace", user: "grace", url: demo_url("Grace"))
        eventually(timeout: 10) { expect(roster("grace")).to contain_exactly("Ada", "Grace") }
        eventually { expect(roster("ada")).to contain_exactly("Ada", "Grace") }
        expect(@browser.eval("ada", "document.getElementById('count').textContent")).to eq "2"
        expect(@browser.eval("ada", "document.getElementById('state').textContent")).to eq "live"
        eventually { expect(FayeOnline.online_users(room).map { |u| u["uname"] }).to contain_exactly("Ada", "Grace") }
        timer = "document.getElementById('timer').textContent"
        first = @browser.eval("ada", timer)
        eventually(timeout: 3) { expect(@browser.eval("ada", timer)).not_to eq first }

        if extra.empty? && configuration.redis?
          path = FayeOnlineSpec.tmp_path("screenshots", "demo.png")
          @browser.screenshot("ada", path, width: 900, height: 560)
          expect(File.size(path)).to be > 10_000
        end

        @browser.close("grace")
        eventually(timeout: 5) { expect(roster("ada")).to eq ["Ada"] }
        expect(@browser.eval("ada", "window.demo.errors")).to eq []
      end
    end
  end
end
