# frozen_string_literal: true

require "uri"

# <faye-online-roster>: a page with no JavaScript of its own shows who is
# in the room, live, from <room>/user_changes, styled by the page (a
# <template> of its own), with one client however many rosters it holds.
RSpec.describe "The roster element, in a real browser", :browser, :integration do
  on_each_deployment do
    include_context "a browser"

    let(:room) { new_room }
    let(:lesson) { new_lesson }

    define_method(:open_roster) do |name, user|
      url = @browser.page_url("roster.html", faye: server_url,
                                             auth: JSON.generate(auth_for(user, room: room, lesson: lesson)))
      @browser.open(name, user: user["uname"], url: url)
    end

    define_method(:names) do |page, roster|
      @browser.eval(page, "Array.from(document.querySelectorAll('##{roster} [data-uid]')).map(function (e) { " \
                          "return e.querySelector('[data-field=uname]') ? e.querySelector('[data-field=uname]').textContent : e.textContent; })")
    end

    it "lists the room's users live, in the page's own markup, on one client" do
      ann = new_user("Ann")
      bob = new_user("Bob")
      open_roster("ann", ann)
      eventually(timeout: 10) { expect(names("ann", "first")).to eq ["Ann"] }
      open_roster("bob", bob)
      eventually(timeout: 10) { expect(names("bob", "first")).to eq %w[Ann Bob] }
      eventually { expect(names("ann", "first")).to eq %w[Ann Bob] }
      expect(names("ann", "second")).to eq %w[Ann Bob]
      eventually { expect(names("ann", "styled")).to eq %w[Ann Bob] }
      expect(@browser.eval("ann", "document.querySelector('#styled .person i').textContent")).to eq ann["uid"].to_s
      expect(@browser.eval("ann", "document.getElementById('first').getAttribute('count')")).to eq "2"
      expect(@browser.eval("ann", "probe.handshakes")).to eq 1

      # Each user's state over their pages, live: Bob minimizes his window.
      states = "Array.from(document.querySelectorAll('#first [data-uid]')).map(function (e) { return e.dataset.state; })"
      eventually(timeout: 5) { expect(@browser.eval("ann", states)).to eq %w[active active] }
      @browser.real_visibility("bob")
      @browser.minimize("bob")
      eventually(timeout: 5) { expect(@browser.eval("ann", states)).to eq %w[active hidden] }
      @browser.minimize("bob", minimized: false)
      eventually(timeout: 5) { expect(@browser.eval("ann", states)).to eq %w[active active] }

      @browser.close("bob")
      eventually(timeout: 5) { expect(names("ann", "first")).to eq ["Ann"] }
      eventually { expect(names("ann", "styled")).to eq ["Ann"] }
      expect(@browser.eval("ann", "probe.errors")).to eq []
      eventually { expect(online_uids(room)).to eq [ann["uid"]] }
    end
  end
end
