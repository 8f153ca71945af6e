//! iceoryx2 publish-subscribe (cargo feature `iceoryx2`).
