"""Review 1314 (issue 13 kind 6, the audit picture): with 20 sessions, labels are cut off at the edges."""
from smartkeys.audit import build_audit
from smartkeys.policy_codec import Permission, TokenCap

SHOP = "0x000000000000000000000000000000000000bEEF"


def test_plot_text_stays_inside_the_png_with_many_sessions(smartkeys_agent, smartkeys_token, smartkeys_bundler,
                                                           smartkeys_chain, smartkeys_owner):
    """Expected (issue 13.6: "readable with 1 and with 20 sessions"): every label is inside the picture.
    Happened (20 sessions, looked at the PNG): the sessions panel's row labels lose their left end ("S12 0x34CB…"
    shows as "2 0x34CB…"), and the cap labels in the right margin are cut ("cap 15 USDC · S6; cap",
    "↑ cap 1 ETH · 20 sessio"); caps 16..29 USDC are one label that runs off the right edge."""
    usdc = smartkeys_token.address
    for i in range(20):
        agent = smartkeys_agent(permissions=(Permission(usdc, "transfer(address,uint256)"),),
                                token_caps=(TokenCap(usdc, (10 + i) * 10**6),))
        agent.transfer(usdc, SHOP, 3 * 10**6, via="user_op", bundler=smartkeys_bundler)
        if i % 5 == 1:
            smartkeys_owner.revoke(agent.session_id)
    fig = build_audit(smartkeys_chain.w3, smartkeys_owner.address).figure()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # the canvas savefig uses for a PNG
    canvas.draw()  # lay out (constrained layout), then render
    renderer = canvas.get_renderer()
    box = fig.bbox
    cut = []
    for text in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent")):
        if not text.get_visible() or not text.get_text().strip():
            continue
        ext = text.get_window_extent(renderer)
        if ext.x0 < box.x0 - 1 or ext.x1 > box.x1 + 1 or ext.y0 < box.y0 - 1 or ext.y1 > box.y1 + 1:
            cut.append(text.get_text())
    assert not cut, f"{len(cut)} label(s) cut at the picture's edge: {cut[:5]}"
