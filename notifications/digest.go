package notifications

import (
	"fmt"
	"strings"
)

// DigestText is the title and body of a supervisor's daily or weekly digest ("daily",
// "weekly") in the device's locale: the headline figures of the city's period. onTime is the
// on-time closure rate (0 to 1), negative when nothing fell due.
func DigestText(locale, kind string, received, closed, backlog, overdue int64, onTime float64) (string, string) {
	zh := strings.HasPrefix(strings.ToLower(locale), "zh")
	if zh {
		title := "每日简报"
		if kind == "weekly" {
			title = "每周简报"
		}
		rate := "无到期案件"
		if onTime >= 0 {
			rate = fmt.Sprintf("按期结案率 %.0f%%", onTime*100)
		}
		return title, fmt.Sprintf("受理 %d，结案 %d，%s；待办 %d，超期 %d。", received, closed, rate, backlog, overdue)
	}
	title := "Daily digest"
	if kind == "weekly" {
		title = "Weekly digest"
	}
	rate := "none fell due"
	if onTime >= 0 {
		rate = fmt.Sprintf("%.0f%% closed on time", onTime*100)
	}
	return title, fmt.Sprintf("%d received, %d closed, %s; %d open, %d overdue.", received, closed, rate, backlog, overdue)
}
