"""The quote-to-cash flows (DESIGN.md 1). Each module declares its change-capture streams
(what to read, which steps a changed record asks for) and its step handlers."""
