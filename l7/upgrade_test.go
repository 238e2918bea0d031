package l7

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

func TestWebSocket(t *testing.T) {
	// A WebSocket echo server that also says hello first, so that bytes
	// the server sends right after its 101 are forwarded too.
	ws := &testServer{name: "ws"}
	ws.srv = httptest.NewServer(websocket.Handler(func(c *websocket.Conn) {
		if err := websocket.Message.Send(c, "hello"); err != nil {
			return
		}
		io.Copy(c, c)
	}))
	t.Cleanup(ws.srv.Close)
	fe, addr := startFrontend(t, FrontendConfig{}, ws)

	cfg, err := websocket.NewConfig("ws://"+addr+"/echo", "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var got string
	if err := websocket.Message.Receive(c, &got); err != nil || got != "hello" {
		t.Fatalf("first message %q, %v", got, err)
	}
	// The server echoes a large message in several frames: read bytes.
	for _, msg := range [][]byte{[]byte("one"), bytes.Repeat([]byte("0123456789"), 10<<10)} {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		echo := make([]byte, len(msg))
		if _, err := io.ReadFull(c, echo); err != nil || !bytes.Equal(echo, msg) {
			t.Fatalf("echo of %d bytes: %v", len(msg), err)
		}
	}
	c.Close()
	checkNoLeaks(t, fe)
}

// TestUpgradeRefused checks that an upgrade the server declines is an
// ordinary response, and that Upgrade without Connection: upgrade is
// still removed as hop-by-hop.
func TestUpgradeRefused(t *testing.T) {
	a := startServer(t, "a")
	_, addr := startFrontend(t, FrontendConfig{}, a)
	c := dialRaw(t, addr)
	br := bufio.NewReader(c)
	for _, tt := range []struct{ hdr, wantHop string }{
		{"Connection: Upgrade\r\nUpgrade: websocket\r\n", "Connection,Upgrade"},
		{"Upgrade: websocket\r\n", ""},
	} {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+tt.hdr+"\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Seen-Hop") != tt.wantHop {
			t.Errorf("%q: status %d, server saw hop-by-hop %q, want 200 and %q",
				tt.hdr, resp.StatusCode, resp.Header.Get("X-Seen-Hop"), tt.wantHop)
		}
	}
}
