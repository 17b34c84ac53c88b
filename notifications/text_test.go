package notifications

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	const n = "NYC-26-000042"
	tests := []struct {
		locale, status, resolution string
		wantTitle, wantBody        string
	}{
		{"en", "submitted", "", "Report received", "Your report NYC-26-000042 has been received."},
		{"en", "dispatched", "", "Report sent to department", "Your report NYC-26-000042 was sent to the responsible department."},
		{"en-US", "triage", "", "Report under review", "The responsible department is reviewing your report NYC-26-000042."},
		{"en", "accepted", "fixed", "Report accepted", "Your report NYC-26-000042 was accepted and will be worked on."},
		{"en", "in_progress", "", "Work in progress", "Work on your report NYC-26-000042 has started."},
		{"en", "resolved", "fixed", "Report resolved", "The issue in your report NYC-26-000042 has been fixed. Thank you!"},
		{"en", "resolved", "", "Report resolved", "Your report NYC-26-000042 has been resolved."},
		{"en", "closed", "duplicate", "Report closed", "Your report NYC-26-000042 duplicates an existing report; the issue is handled there."},
		{"en", "closed", "not_responsible", "Report closed", "The issue in your report NYC-26-000042 is outside the city's responsibility."},
		{"en", "closed", "something_new", "Report closed", "Your report NYC-26-000042 has been closed."},
		{"en", "reopened", "", "Report updated", "There is an update on your report NYC-26-000042."},

		{"zh-CN", "dispatched", "", "已派往责任部门", "您的报告 NYC-26-000042 已派往责任部门。"},
		{"zh-Hans", "dispatched", "", "已派往责任部门", "您的报告 NYC-26-000042 已派往责任部门。"},
		{"zh", "in_progress", "", "正在处理", "您的报告 NYC-26-000042 正在处理中。"},
		{"zh_CN_#Hans", "resolved", "fixed", "报告已处理完毕", "您的报告 NYC-26-000042 所反映的问题已修复，感谢您的反馈！"},
		{"zh-Hans-HK", "closed", "invalid", "报告已结案", "您的报告 NYC-26-000042 经核查，未能确认所反映的问题。"},
		{"ZH-cn", "reopened", "", "报告有更新", "您的报告 NYC-26-000042 有新进展。"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "submitted", "", "已收到报告", "您的报告 NYC-26-000042 已收到。"},

		{"zh-TW", "dispatched", "", "已轉交負責部門", "您的報告 NYC-26-000042 已轉交負責部門。"},
		{"zh-Hant", "closed", "no_action", "報告已結案", "您的報告 NYC-26-000042 經查核，無需採取行動。"},
		{"zh_HK", "submitted", "", "已收到報告", "您的報告 NYC-26-000042 已收到。"},

		{"fr", "dispatched", "", "Report sent to department", "Your report NYC-26-000042 was sent to the responsible department."},
		{"fr-FR", "resolved", "no_action", "Report resolved", "Your report NYC-26-000042 was reviewed; no action is needed."},
		{"", "submitted", "", "Report received", "Your report NYC-26-000042 has been received."},
		{"zz-unknown", "closed", "invalid", "Report closed", "Your report NYC-26-000042 was reviewed, but the issue could not be confirmed."},
	}
	for _, tc := range tests {
		t.Run(tc.locale+"/"+tc.status+"/"+tc.resolution, func(t *testing.T) {
			title, body := Text(tc.locale, tc.status, tc.resolution, n)
			if title != tc.wantTitle || body != tc.wantBody {
				t.Errorf("Text(%q, %q, %q) =\n  %q, %q\nwant\n  %q, %q",
					tc.locale, tc.status, tc.resolution, title, body, tc.wantTitle, tc.wantBody)
			}
		})
	}
}

// TestCatalogsComplete catches a status or resolution added to one language
// and forgotten in another, and format strings that lose the case number.
func TestCatalogsComplete(t *testing.T) {
	statuses := []string{"submitted", "dispatched", "triage", "accepted", "in_progress", "resolved", "closed"}
	resolutions := []string{"fixed", "duplicate", "invalid", "not_responsible", "no_action"}
	catalogs := map[string]*catalog{
		"en": &english, "zh-Hans": &simplifiedChinese, "zh-Hant": &traditionalChinese,
	}
	for name, c := range catalogs {
		if len(c.titles) != len(statuses) || len(c.bodies) != len(statuses) || len(c.outcomes) != len(resolutions) {
			t.Errorf("%s: %d titles, %d bodies, %d outcomes; want %d, %d, %d",
				name, len(c.titles), len(c.bodies), len(c.outcomes), len(statuses), len(statuses), len(resolutions))
		}
		for _, s := range statuses {
			if c.titles[s] == "" || strings.Count(c.bodies[s], "%s") != 1 {
				t.Errorf("%s: status %q lacks a title or a body with one %%s", name, s)
			}
		}
		for _, r := range resolutions {
			if strings.Count(c.outcomes[r], "%s") != 1 {
				t.Errorf("%s: resolution %q lacks a body with one %%s", name, r)
			}
		}
		if c.updatedTitle == "" || strings.Count(c.updatedBody, "%s") != 1 {
			t.Errorf("%s: fallback text incomplete", name)
		}
	}
	// Distinct statuses must read differently, or the citizen learns nothing.
	for name, c := range catalogs {
		seen := map[string]string{}
		for _, s := range statuses {
			if prev, dup := seen[c.titles[s]]; dup {
				t.Errorf("%s: %q and %q share the title %q", name, prev, s, c.titles[s])
			}
			seen[c.titles[s]] = s
		}
	}
}
