package capture

import "testing"

func TestTracker(t *testing.T) {
	var k Tracker[int]
	ended := make(chan int, 3)
	for i := range 2 {
		if !k.Track(i) {
			t.Fatalf("Track(%d) before Close reported false", i)
		}
	}
	k.Untrack(0)
	recorded, wentOn := false, false
	k.Go(func() {
		<-ended
		wentOn = true
	})
	go func() {
		// What Close ends is untracked by its own goroutine, as a tunnel's is
		// once its event is recorded.
		x := <-ended
		recorded = true
		k.Untrack(x)
	}()
	k.Close(func(x int) { ended <- x; ended <- x })
	if !recorded || !wentOn {
		t.Fatal("Close returned before what it ended was untracked, or before a goroutine of Go ended")
	}
	if len(ended) != 0 {
		t.Error("Close ended an exchange that was untracked before")
	}
	if k.Track(2) {
		t.Error("Track after Close reported true")
	}
	ran := false
	k.Go(func() { ran = true })
	if !ran {
		t.Error("Go after Close did not run f before it returned")
	}
	k.Close(func(x int) { t.Errorf("second Close ended %d", x) })
}
