"""The channel's settings: one registry of Dashboard fields, their parsers, the typed result.

``registry`` declares every field once; ``parsers`` holds the bounded helpers every field and
argument is read with; ``formats`` the multi-part field formats; ``channel`` builds the typed
:class:`~.channel.RecoverySettings` and checks what needs two fields. Imports nothing of this
package but ``exceptions``, and never Saleor.
"""
