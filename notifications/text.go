package notifications

import (
	"fmt"
	"strings"
)

// catalog holds the push texts of one language. Bodies are format strings
// with a single %s for the case number.
type catalog struct {
	titles map[string]string // by status
	bodies map[string]string // by status, for statuses without a resolution
	// outcomes are the bodies of resolved and closed cases, by resolution;
	// the citizen cares about what happened, not which of the two final
	// states the case is in (the title says that).
	outcomes map[string]string
	// Fallbacks for a status or resolution this version does not know, so
	// a new workflow state still produces a sensible push.
	updatedTitle, updatedBody string
}

var english = catalog{
	titles: map[string]string{
		"submitted":   "Report received",
		"dispatched":  "Report sent to department",
		"triage":      "Report under review",
		"accepted":    "Report accepted",
		"in_progress": "Work in progress",
		"resolved":    "Report resolved",
		"closed":      "Report closed",
	},
	bodies: map[string]string{
		"submitted":   "Your report %s has been received.",
		"dispatched":  "Your report %s was sent to the responsible department.",
		"triage":      "The responsible department is reviewing your report %s.",
		"accepted":    "Your report %s was accepted and will be worked on.",
		"in_progress": "Work on your report %s has started.",
		"resolved":    "Your report %s has been resolved.",
		"closed":      "Your report %s has been closed.",
	},
	outcomes: map[string]string{
		"fixed":           "The issue in your report %s has been fixed. Thank you!",
		"duplicate":       "Your report %s duplicates an existing report; the issue is handled there.",
		"invalid":         "Your report %s was reviewed, but the issue could not be confirmed.",
		"not_responsible": "The issue in your report %s is outside the city's responsibility.",
		"no_action":       "Your report %s was reviewed; no action is needed.",
	},
	updatedTitle: "Report updated",
	updatedBody:  "There is an update on your report %s.",
}

var simplifiedChinese = catalog{
	titles: map[string]string{
		"submitted":   "已收到报告",
		"dispatched":  "已派往责任部门",
		"triage":      "报告审核中",
		"accepted":    "报告已受理",
		"in_progress": "正在处理",
		"resolved":    "报告已处理完毕",
		"closed":      "报告已结案",
	},
	bodies: map[string]string{
		"submitted":   "您的报告 %s 已收到。",
		"dispatched":  "您的报告 %s 已派往责任部门。",
		"triage":      "责任部门正在审核您的报告 %s。",
		"accepted":    "您的报告 %s 已被受理，将安排处理。",
		"in_progress": "您的报告 %s 正在处理中。",
		"resolved":    "您的报告 %s 已处理完毕。",
		"closed":      "您的报告 %s 已结案。",
	},
	outcomes: map[string]string{
		"fixed":           "您的报告 %s 所反映的问题已修复，感谢您的反馈！",
		"duplicate":       "您的报告 %s 与已有报告重复，将合并处理。",
		"invalid":         "您的报告 %s 经核查，未能确认所反映的问题。",
		"not_responsible": "您的报告 %s 所反映的问题不属于市政府职责范围。",
		"no_action":       "您的报告 %s 经核查，无需采取行动。",
	},
	updatedTitle: "报告有更新",
	updatedBody:  "您的报告 %s 有新进展。",
}

// traditionalChinese serves zh-Hant / zh-TW / zh-HK readers, who would
// otherwise get Simplified characters.
var traditionalChinese = catalog{
	titles: map[string]string{
		"submitted":   "已收到報告",
		"dispatched":  "已轉交負責部門",
		"triage":      "報告審核中",
		"accepted":    "報告已受理",
		"in_progress": "正在處理",
		"resolved":    "報告已處理完畢",
		"closed":      "報告已結案",
	},
	bodies: map[string]string{
		"submitted":   "您的報告 %s 已收到。",
		"dispatched":  "您的報告 %s 已轉交負責部門。",
		"triage":      "負責部門正在審核您的報告 %s。",
		"accepted":    "您的報告 %s 已被受理，將安排處理。",
		"in_progress": "您的報告 %s 正在處理中。",
		"resolved":    "您的報告 %s 已處理完畢。",
		"closed":      "您的報告 %s 已結案。",
	},
	outcomes: map[string]string{
		"fixed":           "您的報告 %s 所反映的問題已修復，感謝您的回報！",
		"duplicate":       "您的報告 %s 與現有報告重複，將合併處理。",
		"invalid":         "您的報告 %s 經查核，未能確認所反映的問題。",
		"not_responsible": "您的報告 %s 所反映的問題不屬於市政府職責範圍。",
		"no_action":       "您的報告 %s 經查核，無需採取行動。",
	},
	updatedTitle: "報告有更新",
	updatedBody:  "您的報告 %s 有新進展。",
}

// Text returns the notification title and body for a status change of case
// number, in the device's locale (BCP 47 like "en", "en-US", "zh", "zh-CN",
// "zh-Hans"); unknown locales fall back to English.
//
// status is one of submitted, dispatched, triage, accepted, in_progress,
// resolved, closed. For resolved and closed, resolution (fixed, duplicate,
// invalid, not_responsible, no_action) selects the body; other statuses
// ignore it. An unknown status or resolution yields a generic
// "report updated" or "resolved/closed" text rather than an empty push.
//
// Besides English the texts exist in Simplified Chinese (zh, zh-CN, zh-SG,
// zh-Hans) and Traditional Chinese (zh-TW, zh-HK, zh-MO, zh-Hant).
func Text(locale, status, resolution, number string) (title, body string) {
	c := catalogFor(locale)
	title, ok := c.titles[status]
	if !ok {
		return c.updatedTitle, fmt.Sprintf(c.updatedBody, number)
	}
	format := c.bodies[status]
	if status == "resolved" || status == "closed" {
		if o, ok := c.outcomes[resolution]; ok {
			format = o
		}
	}
	return title, fmt.Sprintf(format, number)
}

// catalogFor picks the catalog for a locale. Devices report locales in
// several spellings: BCP 47 ("zh-Hant-TW"), POSIX/Java ("zh_TW",
// "zh_CN_#Hans") and occasionally whole Accept-Language lists
// ("zh-CN,zh;q=0.9"), so parsing is lenient and case-insensitive.
func catalogFor(locale string) *catalog {
	if i := strings.IndexAny(locale, ",;"); i >= 0 {
		locale = locale[:i]
	}
	locale = strings.ToLower(strings.TrimSpace(locale))
	subtags := strings.FieldsFunc(locale, func(r rune) bool {
		return r == '-' || r == '_' || r == '#'
	})
	if len(subtags) == 0 || subtags[0] != "zh" {
		return &english
	}
	// An explicit script wins over the region: zh-Hans-HK is Simplified.
	traditional := false
	for _, t := range subtags[1:] {
		switch t {
		case "hans":
			return &simplifiedChinese
		case "hant":
			return &traditionalChinese
		case "tw", "hk", "mo":
			traditional = true
		}
	}
	if traditional {
		return &traditionalChinese
	}
	return &simplifiedChinese
}

// staffTexts are the inbox texts of the entries staff get from timers, by event type.
var staffTexts = map[string]map[string][2]string{
	"en": {
		"remind":   {"Deadline approaching", "Case %s is due soon."},
		"escalate": {"Case overdue", "Case %s is past its deadline and has been escalated."},
	},
	"zh": {
		"remind":   {"即将到期", "案件 %s 即将到期。"},
		"escalate": {"案件超期", "案件 %s 已超过处理期限，已升级督办。"},
	},
}

// StaffText returns the title and body of a staff inbox entry for a timer event ("remind"
// or "escalate") of case number, in English or Chinese; ok is false for other events.
func StaffText(locale, eventType, number string) (title, body string, ok bool) {
	lang := "en"
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(locale)), "zh") {
		lang = "zh"
	}
	t, ok := staffTexts[lang][eventType]
	if !ok {
		return "", "", false
	}
	return t[0], fmt.Sprintf(t[1], number), true
}
